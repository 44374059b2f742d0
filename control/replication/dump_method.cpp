// The dump method as the commands see it: nothing replicates, so nothing lags and there is no
// way back; the barrier is the copy itself, made inside the write pause.
#include <cstdlib>

#include "control/command/exit_codes.h"
#include "control/db/subprocess.h"
#include "control/replication/method.h"
#include "control/replication/replicate.h"

namespace pgcutover::control {
namespace {

using std::chrono::milliseconds;

class DumpMethod final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "dump"; }
  MethodNeeds needs() const override { return {.continuous = false}; }
  int start(CommandContext& ctx) const override { return dump_start(ctx); }
  int status(CommandContext& ctx) const override { return dump_status(ctx); }

  int stop(CommandContext& ctx) const override {
    auto target = ctx.connect_target();
    if (!target) return kExitUsage;
    PgError e;
    record_method(*target, "", {}, e);
    if (ctx.json)
      ctx.print_json(boost::json::object{{"ok", true}, {"method", "dump"}, {"stopped", true}});
    else
      ctx.say("dump method: nothing runs between now and the cutover; forgotten");
    return kExitOk;
  }

  ReplicationLag lag(PgConn&, PgConn&, milliseconds) const override {
    ReplicationLag lag;
    lag.method = "dump";
    lag.error =
        "the dump method has no continuous replication: nothing lags, the cutover "
        "window copies everything";
    return lag;
  }

  FlipStepResult flip_ready(const FlipSides&, const FlipLimits&) const override { return {}; }

  // Copies everything inside the window: data only (the schema is there).
  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    out.ok = false;
    char tmpl[] = "/tmp/pgcutover-dump.XXXXXX";
    if (!mkdtemp(tmpl)) {
      out.failure = "mkdtemp failed";
      return out;
    }
    std::string dirpath = std::string(tmpl) + "/d";
    const std::string& jobs = limits.dump_jobs;
    auto dump = run_client_tool(
        {"pg_dump", "-Fd", "-j", jobs, "--data-only", "--exclude-schema=pgcutover", "-f", dirpath},
        s.from.spec(), "/dev/null");
    if (dump.exit_code != 0) {
      out.failure = "pg_dump: " + dump.errors;
      return out;
    }
    // Empty the destination's tables first so the restore is the whole truth.
    PgResult t = s.to.exec_script(
        "DO $$DECLARE r record; BEGIN FOR r IN SELECT format('%I.%I', schemaname, tablename) q "
        "FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema','pgcutover') "
        "LOOP EXECUTE 'TRUNCATE ' || r.q || ' CASCADE'; END LOOP; END$$");
    if (!t) {
      out.failure = "emptying the destination: " + t.error().message;
      return out;
    }
    auto restore = run_client_tool({"pg_restore", "-j", jobs, "--data-only", "--no-owner", "-d",
                                    s.to.spec().get("dbname"), dirpath},
                                   s.to.spec(), "/dev/null");
    run_client_tool({"rm", "-rf", tmpl}, ConnSpec{}, "/dev/null");
    if (restore.exit_code != 0) {
      out.failure = "pg_restore: " + restore.errors;
      return out;
    }
    out.ok = true;
    out.data["summary"] =
        "dump " + format_seconds(dump.seconds) + ", restore " + format_seconds(restore.seconds);
    return out;
  }
};

}  // namespace

const ReplicationMethod& dump_method() {
  static const DumpMethod m;
  return m;
}

}  // namespace pgcutover::control
