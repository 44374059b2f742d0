#include "control/replication/dump.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "control/command/exit_codes.h"
#include "control/db/control_state.h"
#include "control/db/subprocess.h"
#include "control/replication/replicate.h"

namespace pgcutover::control {

DumpEstimate estimate_dump_window(PgConn& source, int jobs) {
  DumpEstimate est;
  auto size = source.value("SELECT pg_database_size(current_database())");
  if (!size) {
    est.error = "reading pg_database_size on the source";
    return est;
  }
  est.database_bytes = std::stoll(*size);
  // The sample: the largest table up to 256 MB, so the measurement is representative of
  // bulk rows but bounded in time.
  PgResult r = source.exec(
      "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_table_size(c.oid), "
      "count(*) OVER (PARTITION BY pg_table_size(c.oid) > 8 * 1024 * 1024) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', "
      "'information_schema', 'pgcutover') AND n.nspname NOT LIKE 'pg\\_%' "
      "ORDER BY (pg_table_size(c.oid) <= 268435456) DESC, pg_table_size(c.oid) DESC");
  if (!r || r.rows() == 0) {
    est.error = r ? "the source has no tables to sample" : r.error().message;
    return est;
  }
  est.sample_table = r.get(0, 0);
  est.sample_bytes = r.get_int(0, 1);
  int64_t big = 0;
  for (int i = 0; i < r.rows(); ++i) big += r.get_int(i, 1) > 8 * 1024 * 1024;
  est.parallelism = std::max(1, std::min<int>(jobs, static_cast<int>(std::max<int64_t>(1, big))));
  std::string tmp = (std::filesystem::temp_directory_path() /
                     ("pgcutover-dump-sample-" + std::to_string(getpid())))
                        .string();
  auto p = run_client_tool(
      {"pg_dump", "--format=custom", "--data-only", "--table=" + est.sample_table, "--file=" + tmp},
      source.spec(), "/dev/null");
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  if (p.exit_code != 0) {
    est.error = "pg_dump of " + est.sample_table + " failed: " + p.errors;
    return est;
  }
  est.sample_seconds = std::max(p.seconds, 0.001);
  est.bytes_per_second =
      static_cast<double>(std::max<int64_t>(est.sample_bytes, 8192)) / est.sample_seconds;
  est.dump_seconds =
      static_cast<double>(est.database_bytes) / est.bytes_per_second / est.parallelism;
  est.restore_seconds = est.dump_seconds * est.restore_factor;
  est.window_seconds = est.dump_seconds + est.restore_seconds;
  return est;
}

int dump_start(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  int jobs = std::max(1, std::atoi(ctx.args.get("jobs", "4").c_str()));
  DumpEstimate est = estimate_dump_window(*source, jobs);
  if (!est.error.empty()) return ctx.fail(kExitCheckFailed, "estimating the window: " + est.error);
  boost::json::object o{
      {"database_bytes", est.database_bytes},     {"sample_table", est.sample_table},
      {"sample_bytes", est.sample_bytes},         {"sample_seconds", est.sample_seconds},
      {"bytes_per_second", est.bytes_per_second}, {"parallelism", est.parallelism},
      {"restore_factor", est.restore_factor},     {"dump_seconds", est.dump_seconds},
      {"restore_seconds", est.restore_seconds},   {"window_seconds", est.window_seconds}};
  PgError e;
  if (!record_method(*target, "dump", boost::json::object{{"estimate", o}}, e))
    return ctx.fail(kExitCheckFailed, "recording the method on the target: " + e.message);
  if (ctx.json) {
    ctx.print_json(boost::json::object{{"ok", true}, {"method", "dump"}, {"estimate", o}});
    return kExitOk;
  }
  *ctx.out << "dump method: no replication before the cutover; the write pause copies "
              "everything.\n"
           << "  database size     " << format_bytes(static_cast<double>(est.database_bytes))
           << "\n"
           << "  sample            " << est.sample_table << ", "
           << format_bytes(static_cast<double>(est.sample_bytes)) << " dumped in "
           << format_seconds(est.sample_seconds) << " = " << format_bytes(est.bytes_per_second)
           << "/s\n"
           << "  parallel workers  " << est.parallelism << "\n"
           << "  estimate          dump " << format_seconds(est.dump_seconds) << " + restore "
           << format_seconds(est.restore_seconds) << " (x" << est.restore_factor
           << " for index rebuilds) = window " << format_seconds(est.window_seconds) << "\n"
           << "  formula           size / rate / workers x (1 + restore factor)\n";
  return kExitOk;
}

int dump_status(CommandContext& ctx) {
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  auto st = read_control_state(*target, "replication");
  boost::json::object o{{"ok", true}, {"method", "dump"}};
  if (st && st->contains("estimate")) o["estimate"] = st->at("estimate");
  if (ctx.json) {
    ctx.print_json(o);
  } else {
    double w = 0;
    if (st && st->contains("estimate"))
      w = st->at("estimate").as_object().at("window_seconds").to_number<double>();
    *ctx.out << "dump: nothing replicates; estimated cutover window " << format_seconds(w)
             << " (re-run `replicate start --method dump` to measure again)\n";
  }
  return kExitOk;
}

}  // namespace pgcutover::control
