#include "control/lag.h"

#include <thread>

#include "control/commands.h"
#include "control/control_state.h"
#include "control/exit_codes.h"
#include "control/replication_external.h"
#include "control/replication_trigger.h"

namespace pgcutover::control {
namespace {

ReplicationLag logical_lag(PgConn& source, PgConn& target) {
  ReplicationLag lag;
  lag.method = "logical";
  PgResult r = source.exec(
      "SELECT pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text, s.active, "
      "pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, "
      "(SELECT extract(epoch FROM r.replay_lag) FROM pg_stat_replication r "
      " WHERE r.application_name = $2 ORDER BY r.replay_lag DESC NULLS LAST LIMIT 1) "
      "FROM pg_replication_slots s WHERE s.slot_name = $1",
      {std::string(kSlot), std::string(kSubscription)});
  if (!r) {
    lag.error = "reading the slot on the source: " + r.error().message;
    return lag;
  }
  if (r.rows() == 0) {
    lag.error = "no replication slot '" + std::string(kSlot) +
                "' on the source: logical replication is not running (replicate start "
                "--method logical)";
    return lag;
  }
  lag.source_lsn = r.get(0, 0);
  lag.confirmed_flush_lsn = r.get(0, 1);
  lag.slot_active = r.get_bool(0, 2);
  lag.bytes = r.get_int(0, 3);
  lag.ok = true;
  if (!r.is_null(0, 4)) {
    lag.seconds = r.get_double(0, 4);
    lag.seconds_from = "replay_lag";
  } else if (*lag.bytes <= 0 || (lag.slot_active && *lag.bytes < 16 * 1024)) {
    // replay_lag is NULL once the walsender has been idle a while: nothing is in flight.
    lag.seconds = 0;
    lag.seconds_from = "caught_up";
  } else {
    // Behind and no replay_lag: the age of the apply worker's last report bounds it.
    auto v = target.value(
        "SELECT extract(epoch FROM now() - latest_end_time) FROM pg_stat_subscription "
        "WHERE subname = $1 AND relid IS NULL",
        {std::string(kSubscription)});
    if (v) {
      lag.seconds = std::stod(*v);
      lag.seconds_from = "latest_end_time";
    }
  }
  if (!lag.slot_active) {
    lag.error =
        "the slot is not active: no subscriber is connected (check the target's log "
        "and `replicate status`)";
  }
  return lag;
}

}  // namespace

ReplicationLag measure_lag(PgConn& source, PgConn& target, const std::string& method,
                           std::chrono::milliseconds heartbeat_timeout) {
  ReplicationLag lag;
  if (method == "logical") {
    lag = logical_lag(source, target);
  } else if (method == "external") {
    lag.method = method;
    HeartbeatTrip t = heartbeat_round_trip(source, target, heartbeat_timeout);
    lag.ok = t.arrived;
    lag.error = t.error;
    if (t.arrived) {
      lag.seconds = t.seconds;
      lag.seconds_from = "heartbeat";
    }
  } else if (method == "trigger") {
    // The log's size and the age of its oldest entry: what a final drain would have to do.
    lag.method = method;
    TriggerBacklog b = trigger_backlog(source);
    lag.ok = b.ok;
    lag.error = b.ok ? b.broken : b.error;
    if (b.ok) {
      lag.pending_changes = b.pending;
      lag.seconds = b.oldest_seconds;
      lag.seconds_from = "oldest_pending_change";
    }
  } else if (method == "dump") {
    lag.method = method;
    lag.error =
        "the dump method has no continuous replication: nothing lags, the cutover "
        "window copies everything";
  } else {
    lag.method = method;
    lag.error =
        "no replication method recorded: run `replicate start --method ...` or pass "
        "--method";
  }
  lag.measured_at = std::chrono::system_clock::now();
  return lag;
}

boost::json::object to_json(const ReplicationLag& lag) {
  boost::json::object o;
  o["method"] = lag.method;
  o["ok"] = lag.ok;
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
  if (!lag.ok) return lag.error;
  std::string s;
  if (lag.bytes) s += format_bytes(static_cast<double>(*lag.bytes));
  if (lag.pending_changes) s += std::to_string(*lag.pending_changes) + " change(s) pending";
  if (lag.seconds) {
    if (!s.empty()) s += ", ";
    s += format_seconds(*lag.seconds) + " (" + lag.seconds_from + ")";
  }
  if (!lag.error.empty()) s += "; " + lag.error;
  return s;
}

bool wait_caught_up(PgConn& source, PgConn& target, const std::string& method,
                    std::chrono::milliseconds timeout) {
  if (method == "external") return heartbeat_round_trip(source, target, timeout).arrived;
  if (method != "logical") return true;  // nothing replicates: the target is what it is
  auto l = source.value("SELECT pg_current_wal_lsn()::text");
  if (!l) return false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ok = source.value(
        "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
        {std::string(kSlot), *l});
    if (!ok) return false;
    if (*ok == "t") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
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
