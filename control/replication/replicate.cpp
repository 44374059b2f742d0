#include "control/replication/replicate.h"

#include <ctime>

#include "control/command/exit_codes.h"
#include "control/db/control_state.h"
#include "control/replication/method.h"

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

// The method an operator named, or a usage error that lists the choices.
static const ReplicationMethod* named_method(CommandContext& ctx, const std::string& m, int& rc) {
  const ReplicationMethod* method = find_method(m);
  if (!method)
    rc = ctx.fail(kExitUsage, "unknown replication method '" + m + "': use " + method_choices());
  return method;
}

int cmd_replicate_start(CommandContext& ctx) {
  std::string m = ctx.args.get("method");
  if (m.empty())
    return ctx.fail(kExitUsage, "replicate start needs --method " + method_choices() +
                                    " (preflight says which is possible)");
  int rc = kExitUsage;
  const ReplicationMethod* method = named_method(ctx, m, rc);
  return method ? method->start(ctx) : rc;
}

int cmd_replicate_status(CommandContext& ctx) {
  bool usage = false;
  std::string m = method_for(ctx, usage);
  if (usage) return kExitUsage;
  if (m.empty())
    return ctx.fail(kExitCheckFailed,
                    "no replication recorded on the target: run `replicate start --method ...`, "
                    "or pass --method to look for one");
  int rc = kExitUsage;
  const ReplicationMethod* method = named_method(ctx, m, rc);
  return method ? method->status(ctx) : rc;
}

int cmd_replicate_stop(CommandContext& ctx) {
  bool usage = false;
  std::string m = method_for(ctx, usage);
  if (usage) return kExitUsage;
  if (m.empty()) {
    if (ctx.json)
      ctx.print_json(boost::json::object{{"ok", true}, {"method", m}, {"stopped", true}});
    else
      ctx.say(
          "nothing to stop: no replication recorded (pass --method to clean up a specific one)");
    return kExitOk;
  }
  int rc = kExitUsage;
  const ReplicationMethod* method = named_method(ctx, m, rc);
  return method ? method->stop(ctx) : rc;
}

}  // namespace pgcutover::control
