#include "control/replication/lag.h"

#include <thread>

#include "control/command/exit_codes.h"
#include "control/command/proxy_fleet.h"
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

namespace {

// What POST /v1/replication_lag takes: the reading as the proxy's metrics carry it.
std::string lag_reading_body(const ReplicationLag& lag) {
  boost::json::object o{{"method", lag.method}, {"ok", lag.ok}};
  if (!lag.direction.empty()) o["direction"] = lag.direction;
  if (lag.bytes) o["bytes"] = *lag.bytes;
  if (lag.seconds) o["seconds"] = *lag.seconds;
  o["measured_at_unix"] = std::chrono::duration<double>(lag.measured_at.time_since_epoch()).count();
  return boost::json::serialize(o);
}

// Posts one reading to every proxy; false (with a line on stderr) when any did not take it.
bool publish_lag(CommandContext& ctx, ProxyFleet& fleet, const ReplicationLag& lag) {
  auto answers = fleet.publish_lag(lag_reading_body(lag));
  if (all_ok(answers)) return true;
  *ctx.err << "lag: not published to every proxy: " << describe_failures(answers) << "\n";
  return false;
}

}  // namespace

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
  bool publish = ctx.args.has("publish");
  bool reverse = ctx.args.has("reverse");
  ProxyFleet fleet(ctx.settings.proxies,
                   std::chrono::milliseconds(
                       static_cast<long>(std::stod(ctx.args.get("admin-timeout", "5")) * 1000)));
  std::string fleet_problems;
  if (publish) fleet.join_fleet(ctx.settings, ctx.connect_timeout, fleet_problems);
  if (publish && fleet.size() == 0)
    return ctx.fail(kExitUsage,
                    "--publish needs the proxies: [[control.proxies]] in the config (admin_url, "
                    "token), or a fleet (`pgcutoverctl fleet`)" +
                        (fleet_problems.empty() ? std::string() : ": " + fleet_problems));
  int rc = kExitOk;
  for (long i = 0; count == 0 || i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    ReplicationLag lag;
    if (reverse && find_method(method)) {
      lag = find_method(method)->way_back_lag(*source, *target);
      lag.measured_at = std::chrono::system_clock::now();
    } else {
      lag = measure_lag(*source, *target, method);
    }
    rc = lag.ok ? kExitOk : kExitCheckFailed;
    if (lag.ok && max_lag >= 0 && lag.seconds && *lag.seconds > max_lag) rc = kExitCheckFailed;
    if (publish && !publish_lag(ctx, fleet, lag)) rc = kExitCheckFailed;
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
