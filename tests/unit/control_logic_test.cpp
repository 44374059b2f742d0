// Pure logic of pgcutoverctl, no servers: connection strings never show passwords, the schema
// restore list keeps what must be replayed, schema differences are found both ways, key
// ranges read well, and the CLI's usage errors exit 2.
#include <gtest/gtest.h>

#include <sstream>

#include "common/redact.h"
#include "control/cli/cli.h"
#include "control/db/pg_conn.h"
#include "control/schema/schema.h"
#include "control/schema/schema_diff.h"
#include "control/validate/validate.h"

namespace pgcutover::control {
namespace {

TEST(control_conn_spec, UrlIsParsedAndDisplayedWithoutPassword) {
  std::string err;
  auto spec = ConnSpec::parse("postgres://app:hunter2@db.example:6543/shop?sslmode=require", err);
  ASSERT_TRUE(spec) << err;
  EXPECT_EQ(spec->display(), "app@db.example:6543/shop");
  EXPECT_EQ(spec->get("sslmode"), "require");
  EXPECT_EQ(spec->display().find("hunter2"), std::string::npos);
  bool has_password_env = false;
  for (const auto& [k, v] : spec->libpq_environment())
    if (k == "PGPASSWORD") has_password_env = v == "hunter2";
  EXPECT_TRUE(has_password_env);
  // The conninfo form quotes values so a quote in a password survives.
  spec->set("password", "it's");
  EXPECT_NE(spec->conninfo().find("password='it\\'s'"), std::string::npos) << spec->conninfo();
}

// An unterminated quote is refused, and the message does not repeat the secret.
TEST(control_conn_spec, InvalidStringIsAnErrorWithoutEcho) {
  std::string err;
  EXPECT_FALSE(ConnSpec::parse("host=a password='secretpw", err));
  EXPECT_EQ(err.find("secretpw"), std::string::npos) << err;
}

TEST(control_redact, PasswordsInUrlsAndConninfoAreMasked) {
  EXPECT_EQ(redact("x postgres://u:pw@h/db y").find("pw@"), std::string::npos);
  std::string r = redact("host=h password='a b c' user=u");
  EXPECT_EQ(r.find("a b c"), std::string::npos) << r;
  EXPECT_NE(r.find("user=u"), std::string::npos) << r;
}

TEST(control_schema_copy, RestoreListDropsExtensionsAndExistingSchemas) {
  std::string list =
      ";\n; Archive created at ...\n"
      "5; 2615 16390 SCHEMA - heroku_ext app\n"
      "6; 2615 16391 SCHEMA - billing app\n"
      "2; 3079 16392 EXTENSION - citext \n"
      "3400; 0 0 COMMENT - EXTENSION citext \n"
      "215; 1259 16400 TABLE public accounts app\n";
  std::string out = filter_restore_list(list, {"public", "heroku_ext"});
  EXPECT_EQ(out.find("SCHEMA - heroku_ext"), std::string::npos);
  EXPECT_NE(out.find("SCHEMA - billing"), std::string::npos);
  EXPECT_EQ(out.find("EXTENSION"), std::string::npos);
  EXPECT_NE(out.find("TABLE public accounts"), std::string::npos);
}

TEST(control_schema_diff, FindsMissingExtraAndChangedObjects) {
  SchemaSnapshot s, t;
  s.objects = {{"table public.a", "kind=r"},
               {"column public.a.x", "integer not null"},
               {"index public.a_pkey", "CREATE UNIQUE INDEX ..."}};
  t.objects = {{"table public.a", "kind=r"},
               {"column public.a.x", "bigint not null"},
               {"table public.extra", "kind=r"}};
  auto d = diff_schemas(s, t);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].object, "column public.a.x");
  EXPECT_EQ(d[0].target, "bigint not null");
  EXPECT_EQ(d[1].object, "index public.a_pkey");
  EXPECT_TRUE(d[1].target.empty());
  EXPECT_EQ(d[2].object, "table public.extra");
  EXPECT_TRUE(d[2].source.empty());
  EXPECT_TRUE(diff_schemas(s, s).empty());
}

TEST(control_validate, KeyRangesReadAsPredicates) {
  TableInfo t;
  t.schema = "public";
  t.name = "accounts";
  t.primary_key = {"id"};
  t.primary_key_types = {"integer"};
  t.columns = {{"id", "integer", false}, {"balance", "numeric", false}};
  EXPECT_EQ(describe_range(t, {{"10"}, {"20"}}), "id >= 10 and < 20");
  EXPECT_EQ(describe_range(t, {{}, {"20"}}), "id < 20");
  EXPECT_EQ(describe_range(t, {{"10"}, {}}), "id >= 10");
  std::string sql = digest_sql(t, {{"10"}, {"20"}});
  EXPECT_NE(sql.find("(\"id\") >= ($1::integer)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("(\"id\") < ($2::integer)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("md5"), std::string::npos);
  TableInfo keyless = t;
  keyless.primary_key.clear();
  EXPECT_EQ(describe_range(keyless, {}), "whole table (no primary key)");
}

int run(std::vector<std::string> args, std::string* out_text = nullptr,
        std::string* err_text = nullptr) {
  std::ostringstream out, err;
  int rc = run_cli(args, out, err);
  if (out_text) *out_text = out.str();
  if (err_text) *err_text = err.str();
  return rc;
}

TEST(control_cli_parse, UsageErrorsExitTwoAndHelpExitsZero) {
  std::string out, err;
  EXPECT_EQ(run({"validate", "--help"}, &out), 0);
  EXPECT_NE(out.find("--sample"), std::string::npos);
  EXPECT_EQ(run({"validate", "--jobs=x"}, nullptr, &err), 2);
  EXPECT_NE(err.find("--jobs"), std::string::npos);
  EXPECT_EQ(run({"lag", "--watch=3"}), 2);  // a flag takes no value
  EXPECT_EQ(run({"schema"}), 2);
  EXPECT_EQ(run({"schema", "--help"}, &out), 0);
  EXPECT_EQ(run({"preflight", "--method", "trigger", "--source-url", "::bad"}), 2);
  // No source configured: a usage error before anything connects.
  EXPECT_EQ(run({"replicate", "start", "--method", "trigger"}), 2);
}

TEST(control_cli_parse, VersionAndEachCutoverCommandShowsItsOwnOptions) {
  std::string out, err;
  EXPECT_EQ(run({"--version"}, &out), 0);
  EXPECT_EQ(out.rfind("pgcutoverctl ", 0), 0u) << out;
  std::string flip, revert, recover;
  EXPECT_EQ(run({"flip", "--help"}, &flip), 0);
  EXPECT_EQ(run({"revert", "--help"}, &revert), 0);
  EXPECT_EQ(run({"recover", "--help"}, &recover), 0);
  EXPECT_NE(flip.find("--max-validation-age"), std::string::npos);
  EXPECT_EQ(flip.find("--accept-data-loss"), std::string::npos);
  EXPECT_NE(revert.find("--accept-data-loss"), std::string::npos);
  EXPECT_EQ(revert.find("--to "), std::string::npos);
  EXPECT_EQ(revert.find("--max-validation-age"), std::string::npos);
  EXPECT_EQ(recover.find("--dry-run"), std::string::npos);
  EXPECT_EQ(recover.find("--accept-data-loss"), std::string::npos);
  EXPECT_NE(recover.find("--journal"), std::string::npos);
  // What a command does not take is refused, not ignored.
  EXPECT_EQ(run({"revert", "--to", "target"}, nullptr, &err), 2);
  EXPECT_NE(err.find("--to"), std::string::npos) << err;
}

}  // namespace
}  // namespace pgcutover::control
