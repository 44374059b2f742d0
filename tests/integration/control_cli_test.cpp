// pgcutoverctl's contract with operators and scripts: every command answers --help, bad usage
// exits 2 with a hint, an unreachable database exits 2 with a clear message and no password,
// and preflight finds what breaks a Heroku -> RDS migration.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/ctl_runner.h"
#include "tests/lib/pg_cluster.h"

namespace pgcutover::testing {
namespace {

namespace json = boost::json;

const json::object* find_check(const json::object& report, const std::string& id) {
  if (!report.contains("checks")) return nullptr;
  for (const auto& c : report.at("checks").as_array())
    if (c.as_object().at("id").as_string() == id) return &c.as_object();
  return nullptr;
}

std::string str(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

// Every command, and the top level, explains itself: what it does, options, exit codes.
TEST(control_cli, HelpForEveryCommand) {
  for (const std::string words :
       {"preflight", "schema copy", "schema diff", "replicate start", "replicate status",
        "replicate stop", "lag", "validate", "status"}) {
    std::vector<std::string> args;
    for (size_t p = 0, q; p != std::string::npos; p = q == std::string::npos ? q : q + 1) {
      q = words.find(' ', p);
      args.push_back(words.substr(p, q - p));
    }
    args.push_back("--help");
    CtlRun r = ctl(args);
    EXPECT_EQ(r.exit_code, 0) << words << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: pgcutoverctl " + words), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << words;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << words;
  }
  CtlRun top = ctl({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("replicate start"), std::string::npos);
  CtlRun group = ctl({"replicate", "--help"});
  EXPECT_EQ(group.exit_code, 0);
  EXPECT_NE(group.out.find("replicate stop"), std::string::npos);
}

// Usage errors exit 2 and point at --help, before touching any database.
TEST(control_cli, BadUsageExitsTwoWithAHint) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"preflight", "--no-such-option"},
      {"validate", "--jobs"},
      {"validate", "--jobs", "many"},
      {"replicate"},
      {"replicate", "start", "--method", "carrier-pigeon"},
      {"schema", "copy", "extra-argument"},
  };
  for (const auto& args : bad) {
    CtlRun r = ctl(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << r.out << r.err;
    EXPECT_FALSE(r.err.empty()) << joined;
  }
  CtlRun no_method = ctl({"replicate", "start", "--source-url", "postgres://a@127.0.0.1:1/x",
                          "--target-url", "postgres://a@127.0.0.1:1/x"});
  EXPECT_EQ(no_method.exit_code, 2);
  EXPECT_NE(no_method.err.find("--method"), std::string::npos) << no_method.err;
}

// Nothing listens on the port: exit 2, the message names the side and what to check, and the
// password in the URL never appears.
TEST(control_cli, UnreachableDatabaseExitsTwoWithoutLeakingThePassword) {
  int port = free_port();
  std::string url = "postgresql://app:s3cret-pw@127.0.0.1:" + std::to_string(port) + "/app";
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"preflight"}, {"lag"}, {"validate"}, {"schema", "diff"}}) {
    std::vector<std::string> args = cmd;
    args.insert(args.end(), {"--source-url", url, "--target-url", url, "--connect-timeout", "3"});
    CtlRun r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << cmd[0] << r.err;
    EXPECT_NE(r.err.find("cannot connect to source"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cret-pw"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("s3cret-pw"), std::string::npos) << r.out;
  }
  // --json still produces a document a script can read.
  CtlRun j = ctl({"preflight", "--json", "--source-url", url, "--target-url", url});
  EXPECT_EQ(j.exit_code, 2);
  auto doc = parse_object(j.out);
  EXPECT_EQ(doc.count("ok"), 1u) << j.out;
}

// The Heroku-shaped source: preflight flags a missing extension on the target, a table
// without a primary key, an unlogged table and a large object, and says that native logical
// replication is unavailable there and which method is possible; a second source configured
// for logical replication is reported as able to do it.
TEST(control_cli, PreflightFindsHerokuProblemsAndTheLogicalCapableSource) {
  auto source = PgCluster::start(Shape::kHeroku, "heroku");
  auto logical_source =
      PgCluster::start(Shape::kHeroku, "heroku_logical", logical_source_options());
  auto target = PgCluster::start(Shape::kRds, "rds");

  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  app.exec("CREATE TABLE events_log (at timestamptz, what text)");  // no primary key
  app.exec("CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text)");
  app.exec("CREATE TABLE accounts (id bigserial PRIMARY KEY, email citext)");
  app.exec("SELECT lo_from_bytea(0, 'a large object')");
  // An extension the RDS-shaped target does not offer. Both test clusters share one
  // PostgreSQL installation, so the source gets a catalog entry the target has no files for.
  source->query(
      "SET allow_system_table_mods = on; INSERT INTO pg_extension (oid, extname, extowner, "
      "extnamespace, extrelocatable, extversion) VALUES (990001, 'heroku_only_ext', 10, 2200, "
      "true, '1.0')");

  CtlRun r = ctl({"preflight", "--json", "--source-url", source->app_url(), "--target-url",
                  target->app_url()});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;  // the missing extension fails
  auto report = parse_object(r.out);
  ASSERT_FALSE(report.empty()) << r.out;

  const auto* ext = find_check(report, "extensions");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(str(*ext, "status"), "fail");
  EXPECT_NE(str(*ext, "found").find("heroku_only_ext"), std::string::npos) << str(*ext, "found");

  const auto* pk = find_check(report, "primary_keys");
  ASSERT_NE(pk, nullptr);
  EXPECT_NE(str(*pk, "status"), "pass");
  EXPECT_NE(str(*pk, "found").find("public.events_log"), std::string::npos);
  EXPECT_FALSE(str(*pk, "fix").empty());

  const auto* unlogged = find_check(report, "unlogged_tables");
  ASSERT_NE(unlogged, nullptr);
  EXPECT_NE(str(*unlogged, "status"), "pass");
  EXPECT_NE(str(*unlogged, "found").find("public.cache"), std::string::npos);

  const auto* lo = find_check(report, "large_objects");
  ASSERT_NE(lo, nullptr);
  EXPECT_NE(str(*lo, "status"), "pass");
  EXPECT_EQ(lo->at("data").as_object().at("count").as_int64(), 1);

  const auto* logical = find_check(report, "logical_replication");
  ASSERT_NE(logical, nullptr);
  auto data = logical->at("data").as_object();
  EXPECT_FALSE(data.at("available").as_bool());
  EXPECT_NE(str(*logical, "found").find("unavailable"), std::string::npos);
  EXPECT_NE(str(*logical, "found").find("wal_level=replica"), std::string::npos);
  // The app role owns every table: trigger capture is the possible near-zero-downtime method.
  EXPECT_EQ(std::string(data.at("recommended_method").as_string()), "trigger");
  bool dump_possible = false;
  for (const auto& m : data.at("possible_methods").as_array())
    dump_possible |= m.as_string() == "dump";
  EXPECT_TRUE(dump_possible);

  // With --method logical the same finding is a failure, not a warning.
  CtlRun strict = ctl({"preflight", "--json", "--method", "logical", "--source-url",
                       source->app_url(), "--target-url", target->app_url()});
  auto strict_report = parse_object(strict.out);
  const auto* strict_logical = find_check(strict_report, "logical_replication");
  ASSERT_NE(strict_logical, nullptr) << strict.out;
  EXPECT_EQ(str(*strict_logical, "status"), "fail");

  // Human output names the method too.
  CtlRun human =
      ctl({"preflight", "--source-url", source->app_url(), "--target-url", target->app_url()});
  EXPECT_NE(human.out.find("recommended: trigger"), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find(source->app_password()), std::string::npos);

  // The source configured for logical replication.
  CtlRun ok = ctl({"preflight", "--json", "--source-url", logical_source->app_url(), "--target-url",
                   target->app_url()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto ok_report = parse_object(ok.out);
  const auto* ok_logical = find_check(ok_report, "logical_replication");
  ASSERT_NE(ok_logical, nullptr) << ok.out;
  EXPECT_EQ(str(*ok_logical, "status"), "pass");
  EXPECT_TRUE(ok_logical->at("data").as_object().at("available").as_bool());
  // TLS is enforced on both shapes.
  for (const char* id : {"source_tls", "target_tls"}) {
    const auto* tls = find_check(ok_report, id);
    ASSERT_NE(tls, nullptr);
    EXPECT_EQ(str(*tls, "status"), "pass") << id << ": " << str(*tls, "found");
  }
}

}  // namespace
}  // namespace pgcutover::testing
