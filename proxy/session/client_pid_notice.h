// pg_cancel_backend(pid) / pg_terminate_backend(pid) of the pid a driver reports
// (PQbackendPID) reaches no server process when that pid is one the proxy gave the client
// (transaction mode, a read-only route, or session mode with the pool busy at login: see
// docs/drivers.md "Backend pid"). The server then only warns "PID 123 is not a PostgreSQL
// backend process" and returns false, which reads as "the session had already ended". The
// proxy keeps the server's warning and adds a hint saying what that pid is and what does
// reach the client's query, so the difference from direct is never silent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "protocol/framing.h"

namespace pgcutover::proxy {

// The pid named by the server's "PID <n> is not a PostgreSQL backend process" warning, or
// nullopt for any other notice.
std::optional<std::int32_t> unknown_backend_pid(protocol::Bytes notice_body);

// When `notice_body` is that warning and `is_client_pid` says the pid is one the proxy gave a
// client, appends the same NoticeResponse with the hint (whole message, type byte included)
// to `out` and returns true.
bool explain_client_pid_notice(protocol::Bytes notice_body,
                               const std::function<bool(std::int32_t)>& is_client_pid,
                               std::string& out);

}  // namespace pgcutover::proxy
