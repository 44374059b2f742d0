#include "proxy/client_session.h"

#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/client_auth.h"
#include "proxy/data_plane.h"
#include "proxy/deadline.h"
#include "proxy/log.h"
#include "proxy/message_io.h"
#include "proxy/server_pool.h"
#include "proxy/shard.h"

namespace pgcutover::proxy {
namespace fe = protocol::frontend;
namespace be = protocol::backend;

namespace {

// Default SQLSTATE and text of each end reason (PostgreSQL's where it has one).
struct Fatal {
  bool send;
  const char* sqlstate;
  const char* message;
};
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

// Server messages the relay must read whole; everything else streams through by header.
bool inspected(char type) {
  switch (type) {
    case be::kReadyForQuery:
    case be::kParameterStatus:
    case be::kErrorResponse:
    case be::kCopyInResponse:
      return true;
    default:
      return false;
  }
}

bool is_extended(char type) {
  return type == fe::kParse || type == fe::kBind || type == fe::kDescribe || type == fe::kExecute ||
         type == fe::kClose || type == fe::kFlush;
}

}  // namespace

ClientSession::ClientSession(Shard& shard, std::shared_ptr<Stream> client, std::uint64_t id)
    : shard_(shard),
      settings_(shard.settings()),
      client_(std::move(client)),
      id_(id),
      reader_done_(shard.executor()),
      idle_timer_(shard.executor()) {
  stats().clients[static_cast<int>(ClientState::kLogin)].fetch_add(1, std::memory_order_relaxed);
  stats().client_connections_total.fetch_add(1, std::memory_order_relaxed);
}

ClientSession::~ClientSession() {
  stats().clients[static_cast<int>(state_)].fetch_sub(1, std::memory_order_relaxed);
}

// The one place a session's state changes: keeps the per-state gauges right.
void ClientSession::set_state(ClientState s) {
  if (s == state_) return;
  stats().clients[static_cast<int>(state_)].fetch_sub(1, std::memory_order_relaxed);
  stats().clients[static_cast<int>(s)].fetch_add(1, std::memory_order_relaxed);
  state_ = s;
}

bool ClientSession::in_transaction() const {
  if (!server_) return false;
  if (settings_->config.proxy.pool_mode == PoolMode::kTransaction) return true;
  return outstanding_ > 0 || ext_pending_ || last_rfq_ != 'I' || copy_in_;
}

void ClientSession::refresh_busy() {
  bool busy = in_transaction();
  if (busy == busy_) return;
  busy_ = busy;
  shard_.busy_changed(busy);
  stats().servers_in_transaction.fetch_add(busy ? 1 : -1, std::memory_order_relaxed);
}

void ClientSession::end_with(EndStatus status) {
  if (!ending_) ending_ = std::move(status);
}

void ClientSession::terminate(EndStatus why) {
  end_with(std::move(why));
  // Wakes the client read (and, through it, the rest); the FATAL is written by finish().
  client_->cancel();
}

void ClientSession::request_shutdown() {
  shutdown_requested_ = true;
  if (!in_transaction() && state_ != ClientState::kLogin) terminate({EndReason::kShutdown, {}, {}});
}

void ClientSession::forward_cancel() {
  if (!server_) return;  // nothing running: PostgreSQL would find nothing to cancel either
  stats().cancels_total.fetch_add(1, std::memory_order_relaxed);
  server_->cancel_sent = true;
  log::info("cancel_forwarded",
            {{"session", std::to_string(id_)}, {"server_id", std::to_string(server_->id)}});
  asio::co_spawn(shard_.executor(),
                 send_cancel(server_->endpoint, server_->pid, server_->key,
                             settings_->config.proxy.server_connect_timeout),
                 asio::detached);
}

awaitable<void> ClientSession::run() {
  auto self = shared_from_this();
  std::optional<EndStatus> end;
  {
    // One deadline for startup + authentication + first server parameters (slow or silent
    // clients must not hold a connection slot: client_login_timeout).
    StreamDeadline login_deadline(shard_.executor(), client_,
                                  settings_->config.proxy.client_login_timeout);
    end = co_await startup();
    if (!end) end = co_await authenticate();
    if (login_deadline.fired()) end = EndStatus{EndReason::kLoginTimeout, {}, {}};
  }
  if (!end) {
    set_state(ClientState::kIdle);
    end = co_await relay();
  }
  co_await finish(std::move(*end));
}

awaitable<std::optional<EndStatus>> ClientSession::startup() {
  const auto& cfg = settings_->config;
  protocol::Limits limits = settings_->client_limits;
  for (;;) {
    ReadStartup r = co_await read_startup(*client_, cin_, limits);
    if (r.ec) co_return EndStatus{EndReason::kClientClosed, {}, {}};
    if (!r.ok())
      co_return EndStatus{EndReason::kClientProtocol, "08P01",
                          "invalid startup packet: " + std::string(r.error)};
    switch (r.packet.kind) {
      case protocol::StartupKind::kSslRequest:
      case protocol::StartupKind::kGssEncRequest: {
        // Bytes after the request but before the handshake were not encrypted yet could be
        // taken as part of the TLS session (CVE-2021-23214): refuse them.
        if (!cin_.empty())
          co_return EndStatus{EndReason::kClientProtocol, "08P01",
                              "received unencrypted data after SSL request"};
        bool tls = r.packet.kind == protocol::StartupKind::kSslRequest && settings_->client_tls &&
                   !client_->is_tls() && !client_->is_unix();
        char answer = tls ? 'S' : 'N';
        if (auto [ec, n] = co_await client_->write(asio::buffer(&answer, 1)); ec) {
          co_return EndStatus{EndReason::kClientClosed, {}, {}};
        }
        if (tls) {
          if (error_code ec = co_await client_->tls_accept(*settings_->client_tls); ec) {
            stats().tls_handshake_failures_total.fetch_add(1, std::memory_order_relaxed);
            log::info("client_tls_failed", {{"peer", client_->peer()}, {"error", ec.message()}});
            co_return EndStatus{EndReason::kTlsFailed, {}, {}};
          }
          stats().client_tls_handshakes_total.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      case protocol::StartupKind::kCancelRequest:
        shard_.plane().route_cancel({r.packet.cancel_pid, r.packet.cancel_key});
        co_return EndStatus{EndReason::kCancelRequest, {}, {}};
      case protocol::StartupKind::kStartup:
        break;
    }
    startup_ = std::move(r.packet);
    break;
  }
  // A newer minor version or protocol options: answer what we speak (3.0, no options) rather
  // than fail, as PostgreSQL does.
  std::vector<std::string_view> unsupported;
  for (const auto& [name, value] : startup_.params) {
    if (name.rfind("_pq_.", 0) == 0) unsupported.push_back(name);
  }
  if (startup_.minor > 0 || !unsupported.empty()) {
    std::string out;
    protocol::append_negotiate_protocol_version(out, 0, unsupported);
    if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
  }
  if (cfg.tls.client_tls == ClientTls::kRequire && !client_->is_tls() && !client_->is_unix()) {
    co_return EndStatus{EndReason::kTlsRequired, {}, {}};
  }
  user_ = std::string(protocol::startup_param(startup_, "user"));
  if (user_.empty())
    co_return EndStatus{EndReason::kClientProtocol, "28000",
                        "no PostgreSQL user name specified in startup packet"};
  database_ = std::string(protocol::startup_param(startup_, "database"));
  if (database_.empty()) database_ = user_;
  std::string_view replication = protocol::startup_param(startup_, "replication");
  if (!replication.empty() && replication != "false" && replication != "off" &&
      replication != "0" && replication != "no") {
    co_return EndStatus{EndReason::kUnsupported, "0A000",
                        "replication connections are not supported by pgcutover-proxy"};
  }
  if (shard_.plane().client_count().load(std::memory_order_relaxed) > cfg.proxy.max_client_conn) {
    co_return EndStatus{EndReason::kTooManyClients, {}, {}};
  }
  if (shard_.stopping())
    co_return EndStatus{EndReason::kShutdown, "57P03", "the proxy is shutting down"};
  co_return std::nullopt;
}

awaitable<std::optional<EndStatus>> ClientSession::authenticate() {
  ClientAuthResult auth = co_await authenticate_client(*client_, cin_, *settings_, user_);
  switch (auth.outcome) {
    case ClientAuthResult::Outcome::kOk:
      break;
    case ClientAuthResult::Outcome::kClosed:
      co_return EndStatus{EndReason::kClientClosed, {}, {}};
    case ClientAuthResult::Outcome::kFailed:
      log::info("client_auth_failed", {{"peer", client_->peer()}, {"user", user_}});
      co_return EndStatus{EndReason::kAuthFailed, auth.sqlstate, auth.message};
    case ClientAuthResult::Outcome::kProtocolError:
      co_return EndStatus{EndReason::kClientProtocol, auth.sqlstate, auth.message};
  }
  pool_ = &shard_.pool(database_, user_);
  // A new client is told the ParameterStatus set of a fresh server connection; the pool keeps
  // it from its first connection, so only the very first login waits for a server.
  if (!pool_->welcome()) {
    ServerPool::Lease lease = co_await pool_->acquire();
    if (!lease.conn)
      co_return EndStatus{EndReason::kServerLogin, lease.error.sqlstate, lease.error.message};
    pool_->release(std::move(lease.conn), ServerPool::Return::kReuse);
    if (!pool_->welcome()) co_return EndStatus{EndReason::kServerLogin, {}, {}};
  }
  const ParamMap& welcome = *pool_->welcome();
  for (const auto& [name, value] : welcome) {
    if (is_tracked_reported(name)) desired_[name] = value;
  }
  for (auto& [name, value] : startup_settings(startup_)) desired_[name] = value;

  cancel_key_ = shard_.plane().cancels().issue({shard_.index(), id_});
  registered_ = true;
  std::string out;
  protocol::append_auth_ok(out);
  for (const auto& [name, value] : welcome) {
    auto it = desired_.find(name);
    protocol::append_parameter_status(out, name, it != desired_.end() ? it->second : value);
  }
  protocol::append_backend_key_data(out, cancel_key_.pid, cancel_key_.key);
  protocol::append_ready_for_query(out, 'I');
  if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
  log::debug("client_login", {{"session", std::to_string(id_)},
                              {"user", user_},
                              {"database", database_},
                              {"tls", client_->is_tls() ? "on" : "off"}});
  co_return std::nullopt;
}

const std::string& ClientSession::desired_key() {
  if (desired_changed_) {
    desired_key_.clear();
    for (const auto& [name, value] : desired_) {
      desired_key_ += name;
      desired_key_ += '\0';
      desired_key_ += value;
      desired_key_ += '\0';
    }
    desired_changed_ = false;
  }
  return desired_key_;
}

awaitable<bool> ClientSession::write_client(const std::string& bytes) {
  auto [ec, n] = co_await client_->write(asio::buffer(bytes));
  if (ec) co_return false;
  stats().client_bytes_sent.fetch_add(n, std::memory_order_relaxed);
  co_return true;
}

// Arms client_idle_timeout; called whenever the client becomes idle between transactions
// (before a read, and when its server connection is released while that read is pending).
void ClientSession::arm_idle_timer() {
  const auto idle = settings_->config.proxy.client_idle_timeout;
  if (idle.count() <= 0) return;
  idle_timer_.expires_after(idle);
  std::weak_ptr<ClientSession> weak = weak_from_this();
  idle_timer_.async_wait([weak](error_code ec) {
    if (ec) return;
    // A transaction may have started since the timer was armed: only an idle client ends.
    if (auto s = weak.lock(); s && !s->in_transaction())
      s->terminate({EndReason::kIdleTimeout, {}, {}});
  });
}

awaitable<bool> ClientSession::read_client() {
  const bool armed = settings_->config.proxy.client_idle_timeout.count() > 0;
  if (armed && !in_transaction()) arm_idle_timer();
  std::size_t room = 0;
  std::uint8_t* p = cin_.prepare(4096, room);
  auto [ec, n] = co_await client_->read_some(asio::buffer(p, room));
  if (armed) idle_timer_.cancel();
  if (ending_) co_return false;
  if (ec) {
    end_with({EndReason::kClientClosed, {}, {}});
    co_return false;
  }
  cin_.commit(n);
  stats().client_bytes_received.fetch_add(n, std::memory_order_relaxed);
  co_return true;
}

void ClientSession::account_client_message(char type) {
  switch (type) {
    case fe::kQuery:
    case fe::kFunctionCall:
      ++outstanding_;
      stats().queries_total.fetch_add(1, std::memory_order_relaxed);
      break;
    case fe::kSync:
      // The server ignores Sync during COPY FROM STDIN (protocol docs, "COPY Operations"):
      // no ReadyForQuery will answer it.
      if (!copy_in_) {
        ++outstanding_;
        ext_pending_ = false;
        stats().queries_total.fetch_add(1, std::memory_order_relaxed);
      }
      break;
    case fe::kCopyDone:
    case fe::kCopyFail:
      copy_in_ = false;
      break;
    default:
      if (is_extended(type)) ext_pending_ = true;
      break;
  }
}

awaitable<EndStatus> ClientSession::relay() {
  const std::size_t max_message =
      static_cast<std::size_t>(settings_->config.proxy.max_message_size);
  for (;;) {
    if (ending_) co_return *ending_;
    MessageHeader h;
    if (!read_header(cin_.readable(), h)) {
      if (!co_await read_client()) co_return *ending_;
      continue;
    }
    if (h.length < 4)
      co_return EndStatus{EndReason::kClientProtocol, "08P01", "invalid message length"};
    if (h.length - 4 > max_message) {
      co_return EndStatus{
          EndReason::kMessageTooLarge, "08P01",
          "message of " + std::to_string(h.length - 4) + " bytes exceeds max_message_size"};
    }
    if (cin_.size() < h.total()) {
      if (!co_await read_client()) co_return *ending_;
      continue;
    }
    if (h.type == fe::kTerminate) co_return EndStatus{EndReason::kClientTerminate, {}, {}};

    if (skip_until_sync_) {
      // After an error the proxy reported itself (no server connection), the rest of the
      // client's extended-protocol batch is discarded up to Sync, as the server would.
      cin_.consume(h.total());
      if (h.type == fe::kSync) {
        skip_until_sync_ = false;
        std::string out;
        protocol::append_ready_for_query(out, 'I');
        if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
      }
      continue;
    }

    if (!in_transaction()) {
      // Transaction boundary: the cutover gate, shutdown, and (transaction mode) a server.
      if (shutdown_requested_) co_return EndStatus{EndReason::kShutdown, {}, {}};
      if (!shard_.gate().is_open()) {
        set_state(ClientState::kHeld);
        co_await shard_.gate().pass();
        set_state(server_ ? ClientState::kActive : ClientState::kIdle);
        if (ending_) co_return *ending_;
      }
      if (server_ && server_->epoch != shard_.epoch()) {
        // Session mode after a retarget: move to the new backend between transactions.
        // TODO(issue 5): replay prepared statements; refuse sessions with unmovable state.
        server_->stream->cancel();
        detach(false);
      }
      if (!server_) {
        if (auto failed = co_await attach()) {
          if (failed->reason != EndReason::kServerLogin) co_return *failed;
          // No server connection (wait timeout, backend down): the client gets an ERROR and
          // can go on, as after any failed query.
          std::string out;
          protocol::append_error_response(out, {.severity = "ERROR",
                                                .sqlstate = failed->sqlstate,
                                                .message = failed->message,
                                                .detail = {},
                                                .hint = {}});
          stats().count_error(failed->sqlstate);
          if (h.type == fe::kQuery || h.type == fe::kFunctionCall) {
            cin_.consume(h.total());
            protocol::append_ready_for_query(out, 'I');
          } else {
            skip_until_sync_ = true;
          }
          if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
          continue;
        }
      }
    }

    // Forward every complete message buffered (pipelines go in one write), stopping before
    // a Terminate so that it is handled above.
    protocol::Bytes data = cin_.readable();
    std::size_t n = 0;
    while (true) {
      MessageHeader m;
      if (!read_header(data.subspan(n), m)) break;
      if (m.length < 4 || m.length - 4 > max_message || data.size() - n < m.total()) break;
      if (m.type == fe::kTerminate) break;
      // Hook point for issue 4 (named prepared statements in transaction mode): Parse, Bind,
      // Describe and Close will be rewritten here per server connection.
      account_client_message(m.type);
      n += m.total();
    }
    refresh_busy();
    auto stream = server_->stream;  // keeps the socket alive if the server reader drops it
    writing_to_server_ = true;
    auto [ec, written] = co_await stream->write(asio::buffer(data.data(), n));
    writing_to_server_ = false;
    if (ec) {
      end_with({EndReason::kServerLost, {}, {}});
      co_return *ending_;
    }
    stats().server_bytes_sent.fetch_add(written, std::memory_order_relaxed);
    cin_.consume(n);
    cin_.shrink(16 * 1024);
  }
}

awaitable<std::optional<EndStatus>> ClientSession::attach() {
  set_state(ClientState::kWaiting);
  ServerPool::Lease lease = co_await pool_->acquire();
  if (ending_) {
    if (lease.conn) pool_->release(std::move(lease.conn), ServerPool::Return::kReuse);
    set_state(ClientState::kIdle);
    co_return *ending_;
  }
  if (!lease.conn) {
    set_state(ClientState::kIdle);
    co_return EndStatus{EndReason::kServerLogin, lease.error.sqlstate, lease.error.message};
  }
  std::unique_ptr<ServerConnection> conn = std::move(lease.conn);
  // Bring the server connection's settings in line with what this client believes.
  std::vector<std::string> changed, reset;
  std::string sql;
  if (conn->synced_for != desired_key())
    sql = build_sync_query(desired_, conn->params, changed, reset);
  if (!sql.empty()) {
    stats().param_syncs_total.fetch_add(1, std::memory_order_relaxed);
    InternalQueryResult r = co_await run_internal_query(*conn, sql, settings_->server_limits);
    if (!r.ok) {
      bool usable = r.connection_usable;
      pool_->release(std::move(conn),
                     usable ? ServerPool::Return::kReuse : ServerPool::Return::kClose);
      set_state(ClientState::kIdle);
      if (usable) {
        // The server refused a value the client asked for (e.g. a bad TimeZone in the
        // startup packet): PostgreSQL would have refused the connection.
        co_return EndStatus{EndReason::kParamSync, r.error.sqlstate, r.error.message};
      }
      co_return EndStatus{EndReason::kServerLogin, "08006",
                          "server connection lost while preparing it"};
    }
    for (const std::string& name : changed) {
      if (auto it = conn->params.reported.find(name); it != conn->params.reported.end()) {
        desired_[name] = it->second;  // the server's normal form ("ISO" -> "ISO, MDY")
      } else {
        conn->params.set_unreported[name] = desired_[name];
      }
    }
    for (const std::string& name : reset) conn->params.set_unreported.erase(name);
    desired_changed_ = true;
  }
  conn->synced_for = desired_key();
  if (bool want = shard_.plane().read_only(); conn->read_only != want) {
    // Read-only mode: every new transaction on this connection is read-only; the server
    // itself answers writes with 25006, so no statement has to be parsed here.
    InternalQueryResult r = co_await run_internal_query(
        *conn,
        want ? "SET default_transaction_read_only = on" : "SET default_transaction_read_only = off",
        settings_->server_limits);
    if (!r.ok) {
      pool_->release(std::move(conn), ServerPool::Return::kClose);
      set_state(ClientState::kIdle);
      co_return EndStatus{EndReason::kServerLogin, "08006",
                          "server connection lost while preparing it"};
    }
    conn->read_only = want;
  }
  if (ending_) {
    pool_->release(std::move(conn), ServerPool::Return::kReuse);
    set_state(ClientState::kIdle);
    co_return *ending_;
  }
  server_ = std::move(conn);
  outstanding_ = 0;
  ext_pending_ = false;
  copy_in_ = false;
  last_rfq_ = 'I';
  set_state(ClientState::kActive);
  ++readers_;
  asio::co_spawn(shard_.executor(), server_reader(shared_from_this(), server_.get()),
                 asio::detached);
  co_return std::nullopt;
}

void ClientSession::on_server_message(char type, protocol::Bytes body, bool& release_point) {
  switch (type) {
    case be::kReadyForQuery: {
      auto z = protocol::parse_ready_for_query(body);
      char status = z ? z->status : 'E';
      if (outstanding_ > 0) {
        --outstanding_;
      } else {
        log::warn("unexpected_ready_for_query", {{"session", std::to_string(id_)}});
      }
      bool was_busy = last_rfq_ != 'I';
      last_rfq_ = status;
      if (status == 'I' && outstanding_ == 0 && !ext_pending_) {
        release_point = true;
        if (was_busy || settings_->config.proxy.pool_mode == PoolMode::kTransaction) {
          stats().transactions_total.fetch_add(1, std::memory_order_relaxed);
        }
      }
      break;
    }
    case be::kParameterStatus: {
      // The client's own SET changed a reported setting: it now believes that value, and so
      // must every server connection it gets from now on.
      if (auto p = protocol::parse_parameter_status(body)) {
        std::string name(p->name);
        server_->params.reported[name] = std::string(p->value);
        server_->synced_for.clear();
        if (is_tracked_reported(name)) {
          desired_[name] = std::string(p->value);
          desired_changed_ = true;
        }
      }
      break;
    }
    case be::kErrorResponse: {
      auto e = protocol::parse_error_notice(body);
      stats().count_error(e ? e->sqlstate : std::string_view{});
      break;
    }
    case be::kCopyInResponse:
      copy_in_ = true;
      break;
    default:
      break;
  }
}

awaitable<void> ClientSession::server_reader(std::shared_ptr<ClientSession> self,
                                             ServerConnection* conn) {
  std::shared_ptr<Stream> server = conn->stream;
  std::shared_ptr<Stream> client = client_;
  const std::size_t max_message = settings_->server_limits.max_message;
  std::size_t passthrough = 0;  // bytes of a streamed message still to forward
  bool mine = true;
  while (mine) {
    protocol::Bytes data = conn->in.readable();
    std::size_t pos = 0;
    bool release_point = false;
    bool broken = false;
    while (pos < data.size()) {
      if (passthrough > 0) {
        std::size_t k = std::min(passthrough, data.size() - pos);
        pos += k;
        passthrough -= k;
        continue;
      }
      MessageHeader h;
      if (!read_header(data.subspan(pos), h)) break;
      if (h.length < 4 || h.length - 4 > max_message) {
        broken = true;
        break;
      }
      if (inspected(h.type)) {
        if (data.size() - pos < h.total()) break;
        on_server_message(h.type, data.subspan(pos + protocol::kHeaderSize, h.length - 4),
                          release_point);
        pos += h.total();
      } else {
        std::size_t k = std::min(h.total(), data.size() - pos);
        pos += k;
        passthrough = h.total() - k;
      }
    }
    if (broken) {
      log::error("server_protocol_error",
                 {{"session", std::to_string(id_)}, {"server_id", std::to_string(conn->id)}});
      end_with({EndReason::kServerLost, "08P01", "invalid message from the database server"});
      server->close();
      client->cancel();
      break;
    }
    refresh_busy();
    if (pos > 0) {
      auto [ec, n] = co_await client->write(asio::buffer(data.data(), pos));
      if (ec) {
        end_with({EndReason::kClientClosed, {}, {}});
        client->cancel();
        break;
      }
      stats().client_bytes_sent.fetch_add(n, std::memory_order_relaxed);
      stats().server_bytes_received.fetch_add(n, std::memory_order_relaxed);
      conn->in.consume(pos);
    }
    if (server_.get() != conn || ending_) break;
    if (release_point && outstanding_ == 0 && !ext_pending_ && last_rfq_ == 'I' &&
        !writing_to_server_ && passthrough == 0) {
      if (settings_->config.proxy.pool_mode == PoolMode::kTransaction) {
        detach(conn->in.empty());
        refresh_busy();
        arm_idle_timer();
        if (shutdown_requested_) terminate({EndReason::kShutdown, {}, {}});
        break;
      }
      if (shutdown_requested_) {
        terminate({EndReason::kShutdown, {}, {}});
        break;
      }
      arm_idle_timer();  // session mode: idle between transactions from here
    }
    std::size_t room = 0;
    std::uint8_t* p = conn->in.prepare(4096, room);
    auto [ec, n] = co_await server->read_some(asio::buffer(p, room));
    if (server_.get() != conn || ending_) break;  // stopped on purpose (finish/detach)
    if (ec) {
      log::warn("server_connection_lost", {{"session", std::to_string(id_)},
                                           {"server_id", std::to_string(conn->id)},
                                           {"error", ec.message()}});
      end_with({EndReason::kServerLost, {}, {}});
      client->cancel();
      break;
    }
    conn->in.commit(n);
  }
  if (--readers_ == 0) reader_done_.cancel();
  co_return;
}

void ClientSession::detach(bool reuse) {
  if (!server_) {
    log::error("bug_detach_without_server", {{"session", std::to_string(id_)}});
    return;
  }
  pool_->release(std::move(server_),
                 reuse ? ServerPool::Return::kReuse : ServerPool::Return::kClose);
  server_.reset();
  outstanding_ = 0;
  ext_pending_ = false;
  copy_in_ = false;
  last_rfq_ = 'I';
  if (state_ == ClientState::kActive) set_state(ClientState::kIdle);
}

awaitable<void> ClientSession::finish(EndStatus status) {
  end_with(status);  // the server reader sees it and stops instead of reporting a lost server
  set_state(ClientState::kClosing);
  // Stop the server reader first: after this no one else writes to the client.
  if (readers_ > 0) {
    bool clean = server_ && outstanding_ == 0 && !ext_pending_ && last_rfq_ == 'I' && !copy_in_;
    if (server_) {
      if (clean) {
        server_->stream->cancel();
      } else {
        server_->stream->close();
      }
    }
    while (readers_ > 0) {
      reader_done_.expires_at(asio::steady_timer::time_point::max());
      co_await reader_done_.async_wait(use_nothrow);
    }
  }
  if (server_) {
    bool clean = outstanding_ == 0 && !ext_pending_ && last_rfq_ == 'I' && !copy_in_ &&
                 server_->in.empty() && status.reason != EndReason::kServerLost;
    if (clean && settings_->config.proxy.pool_mode == PoolMode::kSession) {
      // Whatever the client did to its session (SET, PREPARE, temp tables, LISTEN) must not
      // reach the next client.
      InternalQueryResult r =
          co_await run_internal_query(*server_, "DISCARD ALL", settings_->server_limits);
      clean = r.ok;
      if (clean) {
        server_->params.set_unreported.clear();
        server_->read_only = false;  // DISCARD ALL reset default_transaction_read_only too
      }
    }
    // A client that vanished mid-transaction leaves the server in an unknown state: close it.
    detach(clean);
  }
  refresh_busy();
  Fatal f = fatal_for(status.reason);
  if (f.send) {
    std::string out;
    std::string sqlstate = status.sqlstate.empty() ? f.sqlstate : status.sqlstate;
    std::string message = status.message.empty() ? f.message : status.message;
    protocol::append_error_response(
        out,
        {.severity = "FATAL", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
    stats().count_error(sqlstate);
    co_await write_client(out);
  }
  if (status.reason != EndReason::kClientTerminate && status.reason != EndReason::kCancelRequest) {
    log::info("client_closed",
              {{"session", std::to_string(id_)},
               {"user", user_},
               {"reason", reason_name(status.reason)},
               {"sqlstate", status.sqlstate.empty() ? f.sqlstate : status.sqlstate}});
  }
  client_->close();
  if (registered_) shard_.plane().cancels().remove(cancel_key_);
  shard_.remove_session(id_);
  shard_.plane().client_count().fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace pgcutover::proxy
