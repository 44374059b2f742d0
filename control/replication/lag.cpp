#include "control/replication/lag.h"

#include <thread>

#include "control/command/exit_codes.h"
#include "control/db/control_state.h"
#include "control/replication/method.h"
#include "control/replication/replicate.h"

namespace pgcutover::control {
ReplicationLag measure_lag(PgConn& source, PgConn& target, const std::string& method,
                           std::chrono::milliseconds heartbeat_timeout) {
  ReplicationLag lag;
  if (const ReplicationMethod* m = find_method(method)) {
    lag = m->lag(source, target, heartbeat_timeout);
  } else {
    lag.method = method;
    lag.error = method.empty() ? "no replication method recorded: run `replicate start --method "
                                 "...` or pass --method"
                               : "unknown replication method '" + method + "'";
  }
  lag.measured_at = std::chrono::system_clock::now();
  return lag;
}

boost::json::object to_json(const ReplicationLag& lag) {
  boost::json::object o;
  o["method"] = lag.method;
  o["ok"] = lag.ok;
  if (!lag.direction.empty()) o["direction"] = lag.direction;
  if (!lag.error.empty()) o["error"] = lag.error;
  o["bytes"] = lag.bytes ? boost::json::value(*lag.bytes) : boost::json::value(nullptr);
  o["seconds"] = lag.seconds ? boost::json::value(*lag.seconds) : boost::json::value(nullptr);
  if (!lag.seconds_from.empty()) o["seconds_from"] = lag.seconds_from;
  if (lag.pending_changes) o["pending_changes"] = *lag.pending_changes;
  if (!lag.source_lsn.empty()) {
    o["source_lsn"] = lag.source_lsn;
    o["confirmed_flush_lsn"] = lag.confirmed_flush_lsn;
    o["slot_active"] = lag.slot_active;
  }
  o["measured_at_unix"] = std::chrono::duration<double>(lag.measured_at.time_since_epoch()).count();
  return o;
}

std::string describe(const ReplicationLag& lag) {
  std::string prefix = lag.direction == "reverse" ? "reverse (target -> source): " : "";
  if (!lag.ok) return prefix + lag.error;
  std::string s;
  if (lag.bytes) s += format_bytes(static_cast<double>(*lag.bytes));
  if (lag.pending_changes) s += std::to_string(*lag.pending_changes) + " change(s) pending";
  if (lag.seconds) {
    if (!s.empty()) s += ", ";
    s += format_seconds(*lag.seconds) + " (" + lag.seconds_from + ")";
  }
  if (!lag.error.empty()) s += "; " + lag.error;
  return prefix + s;
}

int cmd_lag(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  std::string method = ctx.args.get("method");
  if (method.empty()) method = recorded_method(*target);
  bool watch = ctx.args.has("watch");
  double interval = std::stod(ctx.args.get("interval", "2"));
  long count = watch ? std::stol(ctx.args.get("count", "0")) : 1;
  double max_lag = ctx.args.has("max-lag") ? std::stod(ctx.args.get("max-lag")) : -1;
  int rc = kExitOk;
  for (long i = 0; count == 0 || i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    ReplicationLag lag = measure_lag(*source, *target, method);
    rc = lag.ok ? kExitOk : kExitCheckFailed;
    if (lag.ok && max_lag >= 0 && lag.seconds && *lag.seconds > max_lag) rc = kExitCheckFailed;
    if (ctx.json) {
      auto o = to_json(lag);
      o["exit_code"] = rc;
      ctx.print_json(o);  // with --watch: one JSON document per line
    } else {
      *ctx.out << (method.empty() ? "lag" : method + " lag") << ": " << describe(lag) << "\n";
      ctx.out->flush();
    }
  }
  return rc;
}

}  // namespace pgcutover::control
