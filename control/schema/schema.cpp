#include "control/schema/schema.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "control/command/exit_codes.h"
#include "control/db/subprocess.h"
#include "control/schema/schema_diff.h"

namespace pgcutover::control {
namespace {

namespace fs = std::filesystem;

// A private scratch directory for the dump, removed on every path out.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "pgcutover-schema-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

std::string first_lines(const std::string& text, int n) {
  std::istringstream in(text);
  std::string line, out;
  for (int i = 0; i < n && std::getline(in, line);) {
    if (line.empty()) continue;
    out += (out.empty() ? "" : "\n  ") + line;
    ++i;
  }
  return out;
}

}  // namespace

std::vector<ExtensionPlan> plan_extensions(PgConn& source, PgConn& target, PgError& error) {
  std::vector<ExtensionPlan> plans;
  PgResult src = source.exec(
      "SELECT e.extname, n.nspname, e.extversion FROM pg_extension e JOIN pg_namespace n ON "
      "n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid");
  if (!src) {
    error = src.error();
    return plans;
  }
  for (int i = 0; i < src.rows(); ++i) {
    ExtensionPlan p{src.get(i, 0), src.get(i, 1), src.get(i, 2), ""};
    // The source's version when the target offers it; else the target's default.
    auto avail = target.value(
        "SELECT count(*) FROM pg_available_extension_versions WHERE name = $1 AND version = $2",
        {p.name, p.version});
    if (!avail || *avail == "0") p.version.clear();
    p.sql = "CREATE SCHEMA IF NOT EXISTS " + quote_ident(p.schema) +
            "; CREATE EXTENSION IF NOT EXISTS " + quote_ident(p.name) + " WITH SCHEMA " +
            quote_ident(p.schema) +
            (p.version.empty() ? "" : " VERSION " + target.quote_literal(p.version));
    plans.push_back(p);
  }
  return plans;
}

std::string filter_restore_list(const std::string& list,
                                const std::vector<std::string>& existing_schemas) {
  // TOC lines: "<id>; <tableoid> <oid> <TYPE> <namespace> <name> <owner>".
  static const std::regex kExtension(R"(^\d+; \d+ \d+ (EXTENSION|COMMENT - EXTENSION) )");
  static const std::regex kSchema(R"(^\d+; \d+ \d+ SCHEMA - (\S+) )");
  std::set<std::string> existing(existing_schemas.begin(), existing_schemas.end());
  std::istringstream in(list);
  std::string line, out;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, kExtension)) continue;
    if (std::regex_search(line, m, kSchema) && existing.count(m[1].str())) continue;
    out += line + "\n";
  }
  return out;
}

int cmd_schema_copy(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  bool dry_run = ctx.args.has("dry-run");
  boost::json::object report{{"dry_run", dry_run}};

  PgError e;
  auto s = read_schema(*source, e);
  if (!s) return ctx.fail(kExitUsage, "reading the source's catalogs: " + e.message);
  auto t = read_schema(*target, e);
  if (!t) return ctx.fail(kExitUsage, "reading the target's catalogs: " + e.message);
  auto diffs = diff_schemas(*s, *t);
  if (diffs.empty()) {
    if (ctx.json) {
      report["ok"] = true;
      report["action"] = "none";
      report["message"] = "target schema already equal to the source";
      ctx.print_json(report);
    } else {
      *ctx.out << "target schema already equal to the source (" << s->objects.size()
               << " objects): nothing to do\n";
    }
    return kExitOk;
  }
  if (t->relations > 0) {
    // Replaying a dump over a different, non-empty schema half-applies and then fails:
    // refuse and show why instead.
    if (ctx.json) {
      report["ok"] = false;
      report["action"] = "refused";
      report["differences"] = differences_json(diffs);
      ctx.print_json(report);
    } else {
      *ctx.out << "the target already has a different schema (" << t->relations
               << " tables/views/sequences); refusing to copy over it:\n";
      print_differences(*ctx.out, diffs, 30);
      *ctx.out << "drop those objects on the target (or use a fresh database) and run schema "
                  "copy again\n";
    }
    return kExitCheckFailed;
  }

  // 1. Extensions first, so the schema's types and functions resolve.
  auto plans = plan_extensions(*source, *target, e);
  if (!e.message.empty()) return ctx.fail(kExitUsage, "listing extensions: " + e.message);
  boost::json::array ext_report;
  std::vector<std::string> ext_failed;
  for (const auto& p : plans) {
    boost::json::object o{{"name", p.name}, {"schema", p.schema}, {"version", p.version}};
    if (dry_run) {
      ctx.say("would run: " + p.sql);
    } else {
      PgResult r = target->exec_script(p.sql);
      if (r) {
        ctx.say("extension " + p.name + (p.version.empty() ? "" : " " + p.version) + " in " +
                p.schema + ": ok");
        o["created"] = true;
      } else {
        ext_failed.push_back(p.name);
        o["created"] = false;
        o["error"] = r.error().message;
        *ctx.err << "pgcutoverctl: extension " << p.name << ": " << r.error().message
                 << "\n  fix: have an administrator (rds_superuser) run CREATE EXTENSION " << p.name
                 << " on the target, then run schema copy again\n";
      }
    }
    ext_report.push_back(o);
  }
  report["extensions"] = ext_report;
  if (!ext_failed.empty()) {
    report["ok"] = false;
    report["action"] = "extensions_failed";
    if (ctx.json) ctx.print_json(report);
    return kExitCheckFailed;
  }

  // 2. The schema, via pg_dump's custom format so the TOC can be filtered.
  ScratchDir scratch;
  if (scratch.path.empty()) return ctx.fail(kExitUsage, "cannot create a temporary directory");
  std::string dump = (scratch.path / "schema.dump").string();
  std::string list_path = (scratch.path / "restore.list").string();
  std::string sql_path = (scratch.path / "schema.sql").string();
  auto r = run_client_tool({"pg_dump", "--format=custom", "--schema-only", "--no-owner", "--no-acl",
                            "--exclude-schema=pgcutover", "--file=" + dump},
                           source->spec());
  if (r.exit_code != 0)
    return ctx.fail(kExitCheckFailed,
                    "pg_dump of the source failed:\n  " + first_lines(r.errors, 5));
  auto l = run_client_tool({"pg_restore", "--list", dump}, source->spec());
  if (l.exit_code != 0)
    return ctx.fail(kExitCheckFailed, "pg_restore --list failed:\n  " + first_lines(l.errors, 5));
  std::vector<std::string> existing;
  PgResult ns = target->exec("SELECT nspname FROM pg_namespace");
  for (int i = 0; ns && i < ns.rows(); ++i) existing.push_back(ns.get(i, 0));
  {
    std::ofstream f(list_path);
    f << filter_restore_list(l.output, existing);
  }
  auto sql = run_client_tool({"pg_restore", "--no-owner", "--no-acl", "--use-list=" + list_path,
                              "--file=" + sql_path, dump},
                             source->spec());
  if (sql.exit_code != 0)
    return ctx.fail(kExitCheckFailed, "pg_restore failed:\n  " + first_lines(sql.errors, 5));
  if (dry_run) {
    std::ifstream f(sql_path);
    std::stringstream ss;
    ss << f.rdbuf();
    report["ok"] = true;
    report["action"] = "dry_run";
    report["sql"] = ss.str();
    if (ctx.json)
      ctx.print_json(report);
    else
      *ctx.out << "-- would replay on the target:\n" << ss.str();
    return kExitOk;
  }
  // One transaction, stop at the first error: the target is either fully copied or untouched.
  auto p = run_client_tool({"psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                            "--single-transaction", "--file=" + sql_path},
                           target->spec(), "/dev/null");
  if (p.exit_code != 0)
    return ctx.fail(kExitCheckFailed,
                    "restoring the schema on the target failed (nothing was changed):\n  " +
                        first_lines(p.errors, 8));

  auto after = read_schema(*target, e);
  std::vector<SchemaDifference> left;
  if (after) left = diff_schemas(*s, *after);
  report["ok"] = left.empty();
  report["action"] = "copied";
  report["objects"] = s->objects.size();
  report["seconds"] = p.seconds + r.seconds;
  report["differences_after"] = differences_json(left);
  if (ctx.json) {
    ctx.print_json(report);
  } else {
    *ctx.out << "schema copied: " << s->objects.size() << " objects in "
             << format_seconds(p.seconds + r.seconds) << "\n";
    if (!left.empty()) {
      *ctx.out << "but " << left.size() << " difference(s) remain:\n";
      print_differences(*ctx.out, left, 30);
    }
  }
  return left.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace pgcutover::control
