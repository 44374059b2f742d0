// What a client sees through the proxy that cannot be the same as direct, said to the client
// when it meets it instead of left silent (docs/drivers.md "Backend pid", "Known limits"):
//  - in transaction mode (and on read-only routes) each client is known by a pid the proxy gave
//    it, while a notification names the server process that sent it, which serves many
//    clients: a listener cannot match another client's notifications to that client;
//  - in transaction mode pg_prepared_statements lists the pooled server connection's shared
//    statements (pgc_...), not the client's own;
//  - in session mode a client that logged in while the pool was busy was given the proxy's
//    pid, and its server process, found later, has another one; so does the server a cutover
//    moved a session to.
// Each is told once per client session, as a NoticeResponse just before the ReadyForQuery
// that ends the statement that met it, unless the client's client_min_messages hides it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgcutover::proxy {

enum Divergence : unsigned {
  kDivergeNone = 0,
  kDivergeOthersNotificationPid = 1u << 0,   // LISTEN where clients have the proxy's pids
  kDivergePreparedStatementsView = 1u << 1,  // pg_prepared_statements in transaction mode
  kDivergeLoginPid = 1u << 2,  // session mode: the pid given at login is not the server's
};

// Whether a notice of `severity` ("NOTICE", "WARNING") reaches a client whose
// client_min_messages is `client_min_messages` (empty: the server default, notice).
bool notice_reaches_client(std::string_view severity, std::string_view client_min_messages);

// Appends one NoticeResponse (whole message) for each divergence in `due` that reaches the
// client. `client_pid` is the pid the client was given at login, `server_pid` the pid of the
// server process serving it now (kDivergeLoginPid names both).
void append_divergence_notices(std::string& out, unsigned due, std::int32_t client_pid,
                               std::int32_t server_pid, std::string_view client_min_messages);

}  // namespace pgcutover::proxy
