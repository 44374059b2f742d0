// Fencing the side traffic leaves, so nothing writes to it any more, even a proxy that was
// missed or a client that bypasses the proxies: per application role,
// `ALTER ROLE r SET default_transaction_read_only = on` (new sessions start read-only) and
// pg_terminate_backend() of that role's existing client sessions (the setting does not reach
// sessions that already exist). Walsenders and other background processes are spared: the
// replication being waited on connects as the same role on Heroku-shaped sources.
//
// A role without superuser may do both for itself: ALTER ROLE ... SET on its own name, and
// pg_terminate_backend() on backends of a role it is a member of (itself). Other roles need
// CREATEROLE / pg_signal_backend, or a superuser connection.
#pragma once

#include <string>
#include <vector>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct FenceResult {
  bool ok = false;
  std::vector<std::string> roles;  // fenced
  int sessions_terminated = 0;
  std::string error;
  // Where the fence's time went, for the flip's report: the ALTER ROLEs, the terminate
  // statement, and the wait until every terminated session had exited.
  double alter_ms = 0, terminate_ms = 0, exit_wait_ms = 0;
};

// The SQL for one role (exposed for the unit test; the name is quoted).
std::string fence_role_sql(std::string_view role);
std::string unfence_role_sql(std::string_view role);

// Fences every role in `roles` (empty: the connection's own user). The connection itself
// stays writable (SET default_transaction_read_only = off on it first): the external
// method's barrier row is written on it after the fence.
// `spare_pids`: the controller's own other sessions (pg_backend_pid() is always spared).
FenceResult fence(PgConn& conn, std::vector<std::string> roles,
                  const std::vector<int>& spare_pids = {});
// Whether any of `roles` (empty: the connection's user) carries the fence now.
bool roles_fenced(PgConn& conn, std::vector<std::string> roles);
// Removes the setting again (idempotent: RESET of an unset setting is a no-op).
FenceResult unfence(PgConn& conn, const std::vector<std::string>& roles);

}  // namespace pgcutover::control
