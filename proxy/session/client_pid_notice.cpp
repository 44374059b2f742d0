#include "proxy/session/client_pid_notice.h"

#include <cctype>
#include <string_view>

#include "protocol/builders.h"
#include "protocol/messages.h"

namespace pgcutover::proxy {

std::optional<std::int32_t> unknown_backend_pid(protocol::Bytes notice_body) {
  auto n = protocol::parse_error_notice(notice_body);
  if (!n || n->sqlstate != "01000") return std::nullopt;
  // The server's text (src/backend/storage/ipc/signalfuncs.c), English messages only: with
  // another lc_messages the warning goes through unchanged.
  static constexpr std::string_view kPrefix = "PID ";
  static constexpr std::string_view kSuffix = " is not a PostgreSQL backend process";
  std::string_view m = n->message;
  if (m.size() <= kPrefix.size() + kSuffix.size() || m.substr(0, kPrefix.size()) != kPrefix ||
      m.substr(m.size() - kSuffix.size()) != kSuffix)
    return std::nullopt;
  std::string_view digits = m.substr(kPrefix.size(), m.size() - kPrefix.size() - kSuffix.size());
  if (digits.empty() || digits.size() > 10) return std::nullopt;
  std::int64_t pid = 0;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    pid = pid * 10 + (c - '0');
  }
  if (pid <= 0 || pid > INT32_MAX) return std::nullopt;
  return static_cast<std::int32_t>(pid);
}

bool explain_client_pid_notice(protocol::Bytes notice_body,
                               const std::function<bool(std::int32_t)>& is_client_pid,
                               std::string& out) {
  auto pid = unknown_backend_pid(notice_body);
  if (!pid || !is_client_pid(*pid)) return false;
  auto n = protocol::parse_error_notice(notice_body);
  std::string hint =
      "pgcutover-proxy: " + std::to_string(*pid) +
      " is the pid the proxy gave a client session, not a server process: that client's "
      "transactions run on pooled server connections, so no SQL function can signal it. Its "
      "driver's cancel (a CancelRequest) reaches its running query through the proxy; to end "
      "the client, close it from the application.";
  if (!n->hint.empty()) hint = std::string(n->hint) + "\n" + hint;
  protocol::append_notice_response(out, {.severity = n->severity.empty() ? "WARNING" : n->severity,
                                         .sqlstate = n->sqlstate,
                                         .message = n->message,
                                         .detail = n->detail,
                                         .hint = hint});
  return true;
}

}  // namespace pgcutover::proxy
