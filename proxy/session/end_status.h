// Why a client session ended, and what the client is told about it: the FATAL (SQLSTATE and
// text, PostgreSQL's where it has one) and the name the logs use.
#pragma once

#include <string>

namespace pgcutover::proxy {

// Why a session ended; ClientSession::finish() maps it to the FATAL (if any) and the server's
// fate.
enum class EndReason {
  kClientTerminate,  // Terminate message: normal
  kClientClosed,     // EOF or read/write error on the client side
  kClientProtocol,   // malformed bytes from the client (08P01)
  kMessageTooLarge,  // over max_message_size (08P01)
  kLoginTimeout,     // client_login_timeout
  kTlsRequired,      // plaintext while client_tls = require (28000)
  kTlsFailed,        // TLS handshake failed
  kAuthFailed,       // 28P01
  kTooManyClients,   // max_client_conn (53300)
  kUnsupported,      // e.g. replication connections (0A000)
  kNoSuchDatabase,   // a database name the proxy does not serve (3D000)
  kServerLogin,      // could not get a first server connection at login
  kServerLost,       // server connection died while assigned (08006)
  kParamSync,        // the client's settings were refused by the server
  kIdleTimeout,      // client_idle_timeout (57P05)
  kShutdown,         // SIGTERM (57P01)
  kCancelRequest,    // the connection was a CancelRequest: closes silently
};

struct EndStatus {
  EndReason reason = EndReason::kClientClosed;
  std::string sqlstate;  // overrides the default for the reason when set
  std::string message;
};

// Default SQLSTATE and text of each end reason (PostgreSQL's where it has one).
struct Fatal {
  bool send;
  const char* sqlstate;
  const char* message;
};
Fatal fatal_for(EndReason r);
// The reason as the logs name it ("idle_timeout").
const char* reason_name(EndReason r);

}  // namespace pgcutover::proxy
