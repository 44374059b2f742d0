#include "proxy/session/read_only_error.h"

#include "protocol/builders.h"
#include "protocol/messages.h"

namespace pgcutover::proxy {

bool rewrite_read_only_error(protocol::Bytes body, std::string& out) {
  auto e = protocol::parse_error_notice(body);
  if (!e || e->sqlstate != "25006") return false;
  // The server's own text goes to the detail: it names the statement that was refused.
  protocol::append_error_response(
      out, {.severity = e->severity.empty() ? std::string_view("ERROR") : e->severity,
            .sqlstate = "25006",
            .message = "cannot write: a database migration is in progress and the database is "
                       "read-only for now (pgcutover read-only mode)",
            .detail = e->message,
            .hint = "Reads still work. Retry the write when the migration window ends."});
  return true;
}

bool rewrite_read_only_error(protocol::Bytes body, std::string_view database, std::string& out) {
  auto e = protocol::parse_error_notice(body);
  if (!e || e->sqlstate != "25006") return false;
  std::string message(e->message);
  message += " (database \"";
  message += database;
  message += "\" is a read-only route of pgcutover-proxy, served by a replica)";
  std::string hint = "Send writes to the primary's database name";
  if (!e->hint.empty()) hint = std::string(e->hint) + "; " + hint;
  protocol::append_error_response(out, {.severity = e->severity.empty() ? "ERROR" : e->severity,
                                        .sqlstate = e->sqlstate,
                                        .message = message,
                                        .detail = e->detail,
                                        .hint = hint});
  return true;
}

}  // namespace pgcutover::proxy
