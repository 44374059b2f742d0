#include "control/cutover/fence.h"

#include <chrono>
#include <thread>

#include "common/fleet_contract.h"

namespace pgcutover::control {

std::string fence_role_sql(std::string_view role) {
  return "ALTER ROLE " + quote_ident(role) + " SET default_transaction_read_only = on";
}

std::string unfence_role_sql(std::string_view role) {
  return "ALTER ROLE " + quote_ident(role) + " RESET default_transaction_read_only";
}

FenceResult fence(PgConn& conn, std::vector<std::string> roles,
                  const std::vector<int>& spare_pids) {
  FenceResult res;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  auto t0 = Clock::now();
  if (roles.empty()) roles.push_back(conn.spec().get("user"));
  // The controller's own session must stay writable whatever the role's default; sent with
  // the first ALTER ROLE (one round trip fewer while writes are paused; a SET of this cannot
  // fail, so an error still belongs to the role).
  std::string prefix = "SET default_transaction_read_only = off;";
  for (const auto& role : roles) {
    PgResult r = conn.exec_script(prefix + fence_role_sql(role));
    prefix.clear();
    if (!r) {
      res.error = "fencing role " + role + ": " + r.error().message +
                  (r.error().sqlstate == "42501"
                       ? " (a role may fence itself; other roles need CREATEROLE or superuser)"
                       : "");
      return res;
    }
    res.roles.push_back(role);
  }
  res.alter_ms = since(t0);
  auto t1 = Clock::now();
  std::string spare;
  for (int pid : spare_pids) spare += (spare.empty() ? "" : ",") + std::to_string(pid);
  std::string role_list;
  for (const auto& r : roles) role_list += (role_list.empty() ? "" : ",") + r;
  // Only client backends: the walsender of the replication we are about to wait on runs as
  // the same role on a Heroku-shaped source and must live.
  PgResult t = conn.exec(
      "SELECT coalesce(string_agg(pid::text, ',') FILTER (WHERE pg_terminate_backend(pid)), '') "
      "FROM pg_stat_activity WHERE usename = ANY(string_to_array($1, ',')) "
      "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
      "AND NOT pid = ANY(string_to_array($2, ',')::int[]) "
      // The fleet's control sessions (they hold the fleet's advisory lock) only ever write the
      // pgcutover schema, and the flip still needs them to command the proxies.
      "AND pid NOT IN (SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND "
      "l.classid = " +
          std::to_string(fleet::kFleetLockClass) +
          " AND l.objsubid = 2 AND "
          "l.pid IS NOT NULL)",
      {role_list, spare});
  if (!t) {
    res.error = "ending the fenced roles' sessions: " + t.error().message;
    return res;
  }
  res.terminate_ms = since(t1);
  auto t2 = Clock::now();
  std::string pids = t.get(0, 0);
  for (char c : pids) res.sessions_terminated += c == ',';
  if (!pids.empty()) res.sessions_terminated++;
  // pg_terminate_backend only signals. A session caught inside COMMIT may still write its
  // commit record; wait (bounded, 5 s) until every one is gone, so none lands after the
  // catch-up position is read.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pids.empty()) {
    auto left = conn.value(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(string_to_array($1, ',')::int[])",
        {pids});
    if (!left || *left == "0") break;
    if (std::chrono::steady_clock::now() >= deadline) {
      res.error = "sessions of the fenced roles did not exit within 5 s (pids " + pids + ")";
      return res;
    }
    // A terminated idle session exits within a few milliseconds: poll at that pace.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  res.exit_wait_ms = since(t2);
  res.ok = true;
  return res;
}

bool roles_fenced(PgConn& conn, std::vector<std::string> roles) {
  if (roles.empty()) roles.push_back(conn.spec().get("user"));
  std::string role_list;
  for (const auto& r : roles) role_list += (role_list.empty() ? "" : ",") + r;
  auto n = conn.value(
      "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
      "WHERE r.rolname = ANY(string_to_array($1, ',')) "
      "AND 'default_transaction_read_only=on' = ANY(s.setconfig)",
      {role_list});
  return n && *n != "0";
}

FenceResult unfence(PgConn& conn, const std::vector<std::string>& roles) {
  FenceResult res;
  for (const auto& role : roles) {
    PgResult r = conn.exec_script(unfence_role_sql(role));
    if (!r) {
      res.error = "unfencing role " + role + ": " + r.error().message;
      return res;
    }
    res.roles.push_back(role);
  }
  res.ok = true;
  return res;
}

}  // namespace pgcutover::control
