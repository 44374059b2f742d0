#include "proxy/session/divergence_notice.h"

#include <array>
#include <cctype>

#include "protocol/builders.h"

namespace pgcutover::proxy {
namespace {

// client_min_messages levels in the server's order (guc_tables.c): a message is sent when its
// level is at least the setting's.
int level(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kOrder = {
      "debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"};
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug") lower = "debug2";  // the server's alias
  if (lower == "info") return 6;           // INFO is always sent; as a setting it reads as notice
  for (std::size_t i = 0; i < kOrder.size(); ++i) {
    if (kOrder[i] == lower) return static_cast<int>(i);
  }
  return 6;  // unknown or unset: the default, notice
}

}  // namespace

bool notice_reaches_client(std::string_view severity, std::string_view client_min_messages) {
  return level(severity) >= level(client_min_messages);
}

void append_divergence_notices(std::string& out, unsigned due, std::int32_t client_pid,
                               std::int32_t server_pid, std::string_view client_min_messages) {
  // A WARNING: what the client just did gives another answer than it would direct.
  auto warn = [&](std::string_view message, std::string_view detail, std::string_view hint) {
    if (notice_reaches_client("WARNING", client_min_messages))
      protocol::append_notice_response(out, {.severity = "WARNING",
                                             .sqlstate = "01000",
                                             .message = message,
                                             .detail = detail,
                                             .hint = hint});
  };
  if ((due & kDivergeOthersNotificationPid) != 0)
    warn(
        "pgcutover-proxy: notifications from other clients carry their server connection's "
        "pid, not the pid the proxy gave those clients",
        "Clients of this proxy are known by a pid it gave them at login (BackendKeyData), while "
        "a notification names the server process that sent it, and that server connection "
        "serves many clients one transaction after another. A notification this session sends "
        "itself carries this session's own pid, as direct.",
        "Put the sender's identity in the payload when a listener needs it, or connect the "
        "sending clients in session mode.");
  if ((due & kDivergePreparedStatementsView) != 0)
    warn(
        "pgcutover-proxy: pg_prepared_statements lists the pooled server connection's "
        "statements, not this client's",
        "In transaction mode the proxy keeps each client's prepared statements itself and "
        "prepares them on server connections under shared names (pgc_...), which other clients "
        "use as well.",
        "Connect in session mode a client that must read its own prepared statements from "
        "pg_prepared_statements.");
  if ((due & kDivergeLoginPid) != 0 && client_pid != server_pid &&
      notice_reaches_client("NOTICE", client_min_messages)) {
    std::string server = std::to_string(server_pid);
    std::string given = std::to_string(client_pid);
    protocol::append_notice_response(
        out, {.severity = "NOTICE",
              .sqlstate = "01000",
              .message = "pgcutover-proxy: this session's server process is pid " + server +
                         ", not pid " + given + " given at login",
              .detail = "Either no server connection was free when this client logged in, "
                        "so the proxy gave it a pid of its own (BackendKeyData), or a cutover "
                        "moved this session to a new server; pg_backend_pid() returns " +
                        server + ". The driver's cancel reaches this session's queries either way.",
              .hint = "pg_terminate_backend(" + given +
                      ") reaches no process; a pool with room "
                      "at login gives each client its server's own pid."});
  }
}

}  // namespace pgcutover::proxy
