#include "control/replication.h"

#include <ctime>

#include "control/commands.h"
#include "control/control_state.h"
#include "control/exit_codes.h"
#include "control/replication_trigger.h"

namespace pgcutover::control {
namespace {

// --method, else what replicate start recorded on the target.
std::string method_for(CommandContext& ctx, bool& usage_error) {
  usage_error = false;
  std::string m = ctx.args.get("method");
  if (!m.empty()) return m;
  auto target = ctx.connect_target();
  if (!target) {
    usage_error = true;
    return {};
  }
  return recorded_method(*target);
}

}  // namespace

bool record_method(PgConn& target, const std::string& method, boost::json::object extra,
                   PgError& error) {
  if (method.empty()) return delete_control_state(target, "replication");
  extra["method"] = method;
  extra["started_at_unix"] = static_cast<int64_t>(std::time(nullptr));
  return write_control_state(target, "replication", extra, error);
}

int cmd_replicate_start(CommandContext& ctx) {
  std::string m = ctx.args.get("method");
  if (m.empty())
    return ctx.fail(
        kExitUsage,
        "replicate start needs --method logical|external|dump|trigger (preflight says which "
        "is possible)");
  if (m == "logical") return logical_start(ctx);
  if (m == "external") return external_start(ctx);
  if (m == "trigger") return trigger_start(ctx);
  return dump_start(ctx);
}

int cmd_replicate_status(CommandContext& ctx) {
  bool usage = false;
  std::string m = method_for(ctx, usage);
  if (usage) return kExitUsage;
  if (m == "logical") return logical_status(ctx);
  if (m == "external") return external_status(ctx);
  if (m == "dump") return dump_status(ctx);
  if (m == "trigger") return trigger_status(ctx);
  return ctx.fail(kExitCheckFailed,
                  "no replication recorded on the target: run `replicate start --method ...`, "
                  "or pass --method to look for one");
}

int cmd_replicate_stop(CommandContext& ctx) {
  bool usage = false;
  std::string m = method_for(ctx, usage);
  if (usage) return kExitUsage;
  if (m == "logical") return logical_stop(ctx);
  if (m == "external") return external_stop(ctx);
  if (m == "trigger") return trigger_stop(ctx);
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  PgError e;
  record_method(*target, "", {}, e);
  if (ctx.json)
    ctx.print_json(boost::json::object{{"ok", true}, {"method", m}, {"stopped", true}});
  else
    ctx.say(m.empty() ? "nothing to stop: no replication recorded (pass --method to clean up "
                        "a specific one)"
                      : "dump method: nothing runs between now and the cutover; forgotten");
  return kExitOk;
}

}  // namespace pgcutover::control
