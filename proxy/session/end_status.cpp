#include "proxy/session/end_status.h"

namespace pgcutover::proxy {

Fatal fatal_for(EndReason r) {
  switch (r) {
    case EndReason::kClientTerminate:
    case EndReason::kClientClosed:
    case EndReason::kTlsFailed:
    case EndReason::kCancelRequest:
    case EndReason::kLoginTimeout:
      return {false, "", ""};
    case EndReason::kClientProtocol:
      return {true, "08P01", "invalid frontend message"};
    case EndReason::kMessageTooLarge:
      return {true, "08P01", "message exceeds max_message_size"};
    case EndReason::kTlsRequired:
      return {true, "28000", "SSL connection is required by pgcutover-proxy"};
    case EndReason::kAuthFailed:
      return {true, "28P01", "password authentication failed"};
    case EndReason::kTooManyClients:
      return {true, "53300", "sorry, too many clients already"};
    case EndReason::kUnsupported:
      return {true, "0A000", "not supported by pgcutover-proxy"};
    case EndReason::kNoSuchDatabase:
      return {true, "3D000", "database does not exist"};
    case EndReason::kServerLogin:
      return {true, "08006", "could not connect to the database server"};
    case EndReason::kServerLost:
      return {true, "08006", "server connection closed unexpectedly"};
    case EndReason::kParamSync:
      return {true, "22023", "invalid session parameter"};
    case EndReason::kIdleTimeout:
      return {true, "57P05", "terminating connection due to idle-session timeout"};
    case EndReason::kShutdown:
      return {true, "57P01", "terminating connection due to administrator command"};
  }
  return {true, "XX000", "internal error"};
}

const char* reason_name(EndReason r) {
  switch (r) {
    case EndReason::kClientTerminate:
      return "client_terminate";
    case EndReason::kClientClosed:
      return "client_closed";
    case EndReason::kClientProtocol:
      return "client_protocol_error";
    case EndReason::kMessageTooLarge:
      return "message_too_large";
    case EndReason::kLoginTimeout:
      return "login_timeout";
    case EndReason::kTlsRequired:
      return "tls_required";
    case EndReason::kTlsFailed:
      return "tls_failed";
    case EndReason::kAuthFailed:
      return "auth_failed";
    case EndReason::kTooManyClients:
      return "too_many_clients";
    case EndReason::kUnsupported:
      return "unsupported";
    case EndReason::kNoSuchDatabase:
      return "no_such_database";
    case EndReason::kServerLogin:
      return "server_login_failed";
    case EndReason::kServerLost:
      return "server_lost";
    case EndReason::kParamSync:
      return "param_sync_failed";
    case EndReason::kIdleTimeout:
      return "idle_timeout";
    case EndReason::kShutdown:
      return "shutdown";
    case EndReason::kCancelRequest:
      return "cancel_request";
  }
  return "unknown";
}

}  // namespace pgcutover::proxy
