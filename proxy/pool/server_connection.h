// One connection from the proxy to a backend: TCP connect, TLS per the backend's sslmode
// (SSLRequest first), StartupMessage with the backend URL's user and database, password
// authentication (SCRAM-SHA-256, md5, cleartext) with the backend's own credentials, and the
// ParameterStatus set the server reported. Also the internal queries the pool runs on it
// (parameter sync, DISCARD ALL) and CancelRequest to a backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/net/asio.h"
#include "proxy/net/byte_buffer.h"
#include "proxy/net/stream.h"
#include "proxy/pool/prepared_lru.h"
#include "proxy/pool/server_pids.h"
#include "proxy/pool/session_params.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

using Clock = std::chrono::steady_clock;

struct ServerConnection {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<const BackendEndpoint> endpoint;  // which backend (and how to cancel on it)
  std::uint64_t epoch = 0;                          // the cutover epoch it was opened in
  std::int32_t pid = 0;                             // the server's BackendKeyData
  std::int32_t key = 0;
  ServerParams params;
  ParamMap initial_reported;  // what the server reported at login (the pool's welcome set)
  Clock::time_point created;
  Clock::time_point last_used;
  // The serialized settings of the client this connection was last brought in line with
  // (empty: unknown). A client with the same settings skips the comparison entirely, which is
  // the common case (every client of an app sends the same startup parameters).
  std::string synced_for;
  ByteBuffer in{8 * 1024};  // bytes read from the server and not yet relayed
  std::uint64_t id = 0;
  // A CancelRequest was sent for this connection's backend process. It may land after the
  // query it was meant for has finished, so this connection is closed instead of pooled: a
  // late cancel must never hit the next client's query.
  bool cancel_sent = false;
  // default_transaction_read_only as the proxy last set it (read-only mode).
  bool read_only = false;
  // The proxy's statements prepared here and the origin of the unnamed one (transaction mode,
  // proxy/session/statement_rewriter.h).
  ConnectionStatements statements;
  // A prepared statement here failed with "cached plan must not change result type": closed
  // on release rather than pooled (client_session.cpp).
  bool statements_stale = false;
  // Listed in server_pids() from login to close (what a pause reports for the fence).
  ServerPids::Entry listed;

  ~ServerConnection();
};

// An error to show the client (FATAL or ERROR decided by the caller).
struct ServerError {
  std::string sqlstate;
  std::string message;
  bool empty() const { return sqlstate.empty(); }
};

struct ConnectResult {
  std::unique_ptr<ServerConnection> conn;
  ServerError error;
};

// Run-time parameters sent in the startup packet after the backend URL's own (they take
// precedence over the role's and the database's settings).
using StartupParams = std::vector<std::pair<std::string, std::string>>;

// Opens, secures and logs in one server connection within `timeout`.
awaitable<ConnectResult> connect_server(std::shared_ptr<const BackendEndpoint> endpoint,
                                        std::uint64_t epoch, asio::chrono::milliseconds timeout,
                                        protocol::Limits limits, StartupParams extra = {});

// Runs one simple Query on an idle connection and consumes every response up to
// ReadyForQuery, updating the connection's reported parameters. Ok only when the server
// answered without error and is idle ('I') again.
struct InternalQueryResult {
  bool ok = false;
  bool connection_usable = false;  // false: close it
  ServerError error;
};
awaitable<InternalQueryResult> run_internal_query(ServerConnection& conn, std::string_view sql,
                                                  const protocol::Limits& limits);

// Sends CancelRequest(pid, key) to the backend over a new connection (TLS when the backend
// needs it), as libpq's PQcancel does. Best effort: the result is only logged.
awaitable<bool> send_cancel(std::shared_ptr<const BackendEndpoint> endpoint, std::int32_t pid,
                            std::int32_t key, asio::chrono::milliseconds timeout);

}  // namespace pgcutover::proxy
