#include "control/replication/external.h"

#include <thread>

#include "control/command/exit_codes.h"
#include "control/replication/lag.h"
#include "control/replication/replicate.h"

namespace pgcutover::control {

bool ensure_heartbeat_table(PgConn& conn, PgError& error) {
  PgResult r = conn.exec_script(
      "CREATE SCHEMA IF NOT EXISTS pgcutover;"
      "CREATE TABLE IF NOT EXISTS pgcutover.heartbeat ("
      " id int PRIMARY KEY, ts timestamptz NOT NULL, seq bigint NOT NULL)");
  if (!r) error = r.error();
  return r.ok();
}

HeartbeatTrip heartbeat_round_trip(PgConn& source, PgConn& target,
                                   std::chrono::milliseconds timeout) {
  HeartbeatTrip trip;
  auto start = std::chrono::steady_clock::now();
  PgResult w = source.exec(
      "INSERT INTO pgcutover.heartbeat AS h (id, ts, seq) VALUES (1, clock_timestamp(), 1) "
      "ON CONFLICT (id) DO UPDATE SET ts = clock_timestamp(), seq = h.seq + 1 RETURNING seq");
  if (!w) {
    trip.error = "writing the heartbeat on the source: " + w.error().message +
                 " (run `replicate start --method external` first)";
    return trip;
  }
  trip.seq = w.get_int(0, 0);
  auto deadline = start + timeout;
  while (true) {
    auto v = target.value("SELECT seq FROM pgcutover.heartbeat WHERE id = 1");
    if (v && std::stoll(*v) >= trip.seq) {
      trip.arrived = true;
      trip.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return trip;
    }
    if (!v) {
      auto exists = target.value("SELECT to_regclass('pgcutover.heartbeat') IS NOT NULL");
      if (exists && *exists == "f") {
        trip.error =
            "pgcutover.heartbeat does not exist on the target (run `replicate start "
            "--method external`)";
        return trip;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      trip.error = "heartbeat " + std::to_string(trip.seq) +
                   " did not arrive on the target within " +
                   std::to_string(timeout.count() / 1000.0).substr(0, 5) +
                   "s: the replication is behind, stopped, or does not include "
                   "pgcutover.heartbeat";
      return trip;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace pgcutover::control

// ---- replicate start|status|stop --method external ----

namespace pgcutover::control {

int external_start(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  PgError e;
  // The table exists on both sides so the external tool only has to carry rows.
  if (!ensure_heartbeat_table(*source, e))
    return ctx.fail(kExitCheckFailed, "creating pgcutover.heartbeat on the source: " + e.message);
  if (!ensure_heartbeat_table(*target, e))
    return ctx.fail(kExitCheckFailed, "creating pgcutover.heartbeat on the target: " + e.message);
  if (!record_method(*target, "external", {}, e))
    return ctx.fail(kExitCheckFailed, "recording the method on the target: " + e.message);
  ctx.say(
      "external: pgcutover.heartbeat exists on source and target; your replication must carry "
      "it (AWS DMS: a table-mapping rule including schema pgcutover; native: ALTER PUBLICATION "
      "... ADD TABLE pgcutover.heartbeat, then ALTER SUBSCRIPTION ... REFRESH PUBLICATION)");
  if (ctx.args.has("no-wait")) {
    if (ctx.json) ctx.print_json(boost::json::object{{"ok", true}, {"method", "external"}});
    return kExitOk;
  }
  auto timeout = std::chrono::seconds(std::stol(ctx.args.get("wait-timeout", "60")));
  ReplicationLag lag = measure_lag(*source, *target, "external", timeout);
  if (ctx.json) {
    auto o = to_json(lag);
    o["ok"] = lag.ok;
    ctx.print_json(o);
  } else {
    *ctx.out << (lag.ok ? "heartbeat arrived: lag " : "no heartbeat: ") << describe(lag) << "\n";
  }
  return lag.ok ? kExitOk : kExitCheckFailed;
}

int external_status(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  ReplicationLag lag = measure_lag(*source, *target, "external", std::chrono::seconds(10));
  if (ctx.json) {
    auto o = to_json(lag);
    o["ok"] = lag.ok;
    ctx.print_json(boost::json::object{{"ok", lag.ok}, {"method", "external"}, {"lag", o}});
  } else {
    *ctx.out << "external: " << (lag.ok ? "heartbeat replicating, lag " : "") << describe(lag)
             << "\n";
  }
  return lag.ok ? kExitOk : kExitCheckFailed;
}

int external_stop(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  std::vector<std::string> problems;
  for (auto* c : {&*source, &*target}) {
    PgResult r = c->exec_script("DROP TABLE IF EXISTS pgcutover.heartbeat");
    if (!r) problems.push_back(r.error().message);
  }
  PgError e;
  record_method(*target, "", {}, e);
  if (ctx.json) {
    boost::json::array p;
    for (const auto& x : problems) p.emplace_back(x);
    ctx.print_json(
        boost::json::object{{"ok", problems.empty()}, {"method", "external"}, {"problems", p}});
  } else {
    ctx.say(problems.empty() ? "external: dropped pgcutover.heartbeat on both sides; remove it "
                               "from your replication task too"
                             : "external: could not drop the heartbeat table: " + problems[0]);
  }
  return problems.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace pgcutover::control
