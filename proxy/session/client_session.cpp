#include "proxy/session/client_session.h"

#include <atomic>

#include "common/log.h"
#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/net/deadline.h"
#include "proxy/net/message_io.h"
#include "proxy/pool/route_table.h"
#include "proxy/pool/server_pool.h"
#include "proxy/session/client_auth.h"
#include "proxy/session/end_status.h"
#include "proxy/session/read_only_error.h"
#include "proxy/telemetry/held_waits.h"

namespace pgcutover::proxy {
namespace fe = protocol::frontend;
namespace be = protocol::backend;

ClientSession::ClientSession(SessionHost& host, std::shared_ptr<Stream> client, std::uint64_t id)
    : host_(host),
      shard_(host.context()),
      settings_(shard_.settings()),
      client_(std::move(client)),
      id_(id) {
  track_prepared_ = settings_->config.proxy.pool_mode == PoolMode::kTransaction &&
                    settings_->config.proxy.max_prepared_statements > 0;
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
  // Transaction mode holds a server only inside a transaction, unless the session is pinned:
  // then, as in session mode, it is between transactions when the server is idle.
  if (settings_->config.proxy.pool_mode == PoolMode::kTransaction && !pinned_) return true;
  return tx_.busy() || probing_;
}

void ClientSession::refresh_busy() {
  // A read-only route's transactions only read: a flip need not wait for them (its server
  // connection of the old epoch is closed when released), so they are not counted.
  bool busy = (in_transaction() || acquiring_) && !read_only_route_;
  if (busy == busy_) return;
  busy_ = busy;
  host_.busy_changed(busy);
  stats().servers_in_transaction.fetch_add(busy ? 1 : -1, std::memory_order_relaxed);
}

void ClientSession::end_with(EndStatus status) {
  if (!ending_) ending_ = std::make_unique<EndStatus>(std::move(status));
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
  if (std::optional<EndStatus> end = co_await login()) {
    co_await finish(std::move(*end));
    co_return;
  }
  set_state(ClientState::kIdle);
  co_await converse(false);
}

awaitable<void> ClientSession::converse(bool readable) {
  auto self = shared_from_this();
  std::optional<EndStatus> end = co_await relay(readable);
  if (end) {
    co_await finish(std::move(*end));
  } else {
    park();
  }
}

// Only the relay's own work keeps its coroutine: a server reader runs on its own, a held
// client waits at the gate in the relay, a probe's answer is awaited there.
bool ClientSession::may_park() const {
  return cin_.empty() && !ending_ && !probing_;
}

// Waits for the client's next bytes with a handler instead of a coroutine. Whatever ends the
// session meanwhile (terminate(), a lost server, shutdown) cancels the client's operations,
// which wakes this wait: the relay then finds ending_ set and finishes.
void ClientSession::park() {
  parked_ = true;
  // Between transactions the read buffer goes too; inside one it stays (the answer is near)
  // until the server reader reaches the transaction's end while this client is parked.
  if (!in_transaction()) cin_.release();
  // Allocated at its own size: Asio's default recycles the thread's last freed operation
  // block, a write's (~250 B), and 10,000 parked clients would each hold one.
  client_->async_wait_read(
      asio::bind_allocator(std::allocator<void>(), [self = shared_from_this()](error_code ec) {
        self->parked_ = false;
        if (ec) self->end_with({EndReason::kClientClosed, {}, {}});
        asio::co_spawn(self->shard_.executor(), self->converse(true), asio::detached);
      }));
}

// A coroutine of its own so that what login needs (the deadline's timer, the startup and
// authentication frames) is gone before the session goes idle in relay().
awaitable<std::optional<EndStatus>> ClientSession::login() {
  // One deadline for startup + authentication + first server parameters (slow or silent
  // clients must not hold a connection slot: client_login_timeout).
  StreamDeadline login_deadline(shard_.executor(), client_,
                                settings_->config.proxy.client_login_timeout);
  protocol::StartupPacket packet;  // kept for authenticate(), gone with this frame
  std::optional<EndStatus> end = co_await startup(packet);
  if (!end) end = co_await authenticate(packet);
  if (login_deadline.fired()) end = EndStatus{EndReason::kLoginTimeout, {}, {}};
  co_return end;
}

awaitable<std::optional<EndStatus>> ClientSession::startup(protocol::StartupPacket& packet) {
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
        host_.route_cancel({r.packet.cancel_pid, r.packet.cancel_key});
        co_return EndStatus{EndReason::kCancelRequest, {}, {}};
      case protocol::StartupKind::kStartup:
        break;
    }
    packet = std::move(r.packet);
    break;
  }
  // A newer minor version or protocol options: answer what we speak (3.0, no options) rather
  // than fail, as PostgreSQL does.
  std::vector<std::string_view> unsupported;
  for (const auto& [name, value] : packet.params) {
    if (name.rfind("_pq_.", 0) == 0) unsupported.push_back(name);
  }
  if (packet.minor > 0 || !unsupported.empty()) {
    std::string out;
    protocol::append_negotiate_protocol_version(out, 0, unsupported);
    if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
  }
  if (cfg.tls.client_tls == ClientTls::kRequire && !client_->is_tls() && !client_->is_unix()) {
    co_return EndStatus{EndReason::kTlsRequired, {}, {}};
  }
  user_ = std::string(protocol::startup_param(packet, "user"));
  if (user_.empty())
    co_return EndStatus{EndReason::kClientProtocol, "28000",
                        "no PostgreSQL user name specified in startup packet"};
  database_ = std::string(protocol::startup_param(packet, "database"));
  if (database_.empty()) database_ = user_;
  std::string_view replication = protocol::startup_param(packet, "replication");
  if (!replication.empty() && replication != "false" && replication != "off" &&
      replication != "0" && replication != "no") {
    co_return EndStatus{EndReason::kUnsupported, "0A000",
                        "replication connections are not supported by pgcutover-proxy"};
  }
  if (host_.client_count().load(std::memory_order_relaxed) > cfg.proxy.max_client_conn) {
    co_return EndStatus{EndReason::kTooManyClients, {}, {}};
  }
  if (shard_.stopping())
    co_return EndStatus{EndReason::kShutdown, "57P03", "the proxy is shutting down"};
  co_return std::nullopt;
}

awaitable<std::optional<EndStatus>> ClientSession::authenticate(
    const protocol::StartupPacket& packet) {
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
  // As PostgreSQL, after authentication (a stranger learns no database names): a name the
  // proxy does not serve is refused instead of silently served by the backend's database,
  // and never gets a pool of its own.
  if (!settings_->serves_database(database_)) {
    co_return EndStatus{EndReason::kNoSuchDatabase, "3D000",
                        "database \"" + database_ + "\" does not exist"};
  }
  pool_ = &host_.pool(database_, user_);
  read_only_route_ = shard_.routes().for_database(database_).read_only;
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
  startup_desired_ = startup_settings(packet);
  desired_ = pool_->login_settings(startup_desired_);

  // Session mode: the server connection is the client's for the whole session, so when one is
  // free it is taken now and the client is told its pid, as direct: pg_backend_pid(),
  // pg_terminate_backend() of the pid a driver reports, and the pid of its own notifications
  // agree. A login never queues for it (clients queued on a small pool must still log in):
  // with the pool busy the client gets the proxy's own pid, as in transaction mode and on
  // read-only routes (whose reads spread over replicas). A flip that moves the session
  // changes the server's pid, not the one the client was told.
  if (settings_->config.proxy.pool_mode == PoolMode::kSession && !read_only_route_ &&
      pool_->available_now()) {
    if (auto failed = co_await attach()) co_return *failed;
    cancel_key_ = host_.cancels().issue({shard_.index(), id_}, server_->pid);
  } else {
    cancel_key_ = host_.cancels().issue({shard_.index(), id_});
  }
  registered_ = true;
  std::string out;
  protocol::append_auth_ok(out);
  for (const auto& [name, value] : welcome) {
    auto it = desired().find(name);
    protocol::append_parameter_status(out, name, it != desired().end() ? it->second : value);
  }
  protocol::append_backend_key_data(out, cancel_key_.pid, cancel_key_.key);
  protocol::append_ready_for_query(out, 'I');
  if (!co_await write_client(out)) co_return EndStatus{EndReason::kClientClosed, {}, {}};
  log::debug("client_login", {{"session", std::to_string(id_)},
                              {"shard", std::to_string(shard_.index())},
                              {"user", user_},
                              {"database", database_},
                              {"tls", client_->is_tls() ? "on" : "off"}});
  co_return std::nullopt;
}

const std::string& ClientSession::desired_key() {
  if (desired_changed_) {
    desired_->rekey();  // an own copy: edit_desired() made it
    desired_changed_ = false;
  }
  return desired_->key;
}

ParamMap& ClientSession::edit_desired() {
  if (desired_->interned || desired_.use_count() > 1) {
    auto own = std::make_shared<DesiredSettings>(*desired_);
    own->interned = false;
    desired_ = std::move(own);
  }
  desired_changed_ = true;
  return desired_->params;
}

void ClientSession::set_desired(const std::string& name, const std::string& value) {
  if (auto it = desired().find(name); it != desired().end() && it->second == value) return;
  edit_desired()[name] = value;
}

void ClientSession::answered_after_hold() {
  held_waits().answered(id_, held_since_);
  log_held_answered(id_, held_since_, released_at_);
  held_since_ = {};
  released_at_ = {};
}

awaitable<bool> ClientSession::write_client(const std::string& bytes) {
  if (held_since_ != std::chrono::steady_clock::time_point{}) answered_after_hold();
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
  idle_timer_.get(shard_.executor()).expires_after(idle);
  std::weak_ptr<ClientSession> weak = weak_from_this();
  idle_timer_.get(shard_.executor()).async_wait([weak](error_code ec) {
    if (ec) return;
    // A transaction may have started since the timer was armed: only an idle client ends.
    if (auto s = weak.lock(); s && !s->in_transaction())
      s->terminate({EndReason::kIdleTimeout, {}, {}});
  });
}

void ClientSession::account_client_message(char type) {
  if (tx_.client_sent(type)) stats().queries_total.fetch_add(1, std::memory_order_relaxed);
}

awaitable<std::optional<EndStatus>> ClientSession::relay(bool readable) {
  const std::size_t max_message =
      static_cast<std::size_t>(settings_->config.proxy.max_message_size);
  const bool idle_timeout = settings_->config.proxy.client_idle_timeout.count() > 0;
  // Woken from park(): the socket is readable and the idle timer already armed.
  bool need_bytes = readable;
  for (;;) {
    if (need_bytes) {
      need_bytes = false;
      if (!readable) {
        if (idle_timeout && !in_transaction()) arm_idle_timer();
        // Nothing buffered and nothing readable: park until the client sends (a client may
        // stay idle for hours; it then holds no coroutine frame and no read buffer).
        if (may_park() && !client_->buffered()) co_return std::nullopt;
      }
      if (!ending_) {
        std::size_t room = 0;
        std::uint8_t* p = cin_.prepare(4096, room);
        error_code ec;
        std::size_t n = 0;
        // Woken by readiness: read at once (no speculative read posted, no suspension).
        if (readable) {
          n = client_->read_now(asio::buffer(p, room), ec);
          // Nothing there: the wake was for bytes an earlier read already took (a wait that
          // skipped epoll's re-arm may see such an edge; net/edge_wait.h). Park again.
          if (ec == asio::error::would_block && may_park()) co_return std::nullopt;
        }
        if (!readable || ec == asio::error::would_block)
          std::tie(ec, n) = co_await client_->read_some(asio::buffer(p, room));
        if (ec) end_with({EndReason::kClientClosed, {}, {}});
        if (!ending_) {
          cin_.commit(n);
          stats().client_bytes_received.fetch_add(n, std::memory_order_relaxed);
        }
      }
      readable = false;
      if (idle_timeout) idle_timer_.cancel();
    }
    if (ending_) co_return *ending_;
    MessageHeader h;
    if (!read_header(cin_.readable(), h)) {
      need_bytes = true;
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
      need_bytes = true;
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
      // Read-only routes pass a closed gate: reads go on from the old side's replica until the
      // flip, then from the new side's (no write can be lost or reordered by a replica read).
      if (!host_.gate().is_open() && !read_only_route_) {
        set_state(ClientState::kHeld);
        if (held_since_ == std::chrono::steady_clock::time_point{}) {
          held_since_ = std::chrono::steady_clock::now();
          held_waits().held(id_, held_since_);
        }
        co_await host_.gate().pass();
        released_at_ = std::chrono::steady_clock::now();
        set_state(server_ ? ClientState::kActive : ClientState::kIdle);
        if (ending_) co_return *ending_;
      }
      // A new transaction starts: the pause's snapshot is history.
      cutover_snapshot_.reset();
      if (server_ && server_->epoch != shard_.epoch()) {
        // Session mode (or a pinned session) after a retarget: move to the new backend
        // between transactions, taking settings and prepared statements along.
        if (auto end = co_await move_to_current_backend()) co_return *end;
      }
      if (!server_ && track_prepared_) {
        // Parse/Close/Sync only: answered here, no server connection needed (see
        // answer_without_server in proxy/session/prepared_statements.h).
        if (auto local = answer_without_server(cin_.readable(), rewriter().statements(),
                                               settings_->client_limits)) {
          cin_.consume(local->consumed);
          stats().queries_total.fetch_add(1, std::memory_order_relaxed);
          if (!co_await write_client(local->reply))
            co_return EndStatus{EndReason::kClientClosed, {}, {}};
          continue;
        }
      }
      if (!server_) {
        // From the open gate on, this transaction is in flight: a pause that begins while it
        // waits for a server connection must wait for it too, or it would run after the
        // drain, behind the controller's catch-up point (tests/integration/test_ledger_flips.py).
        acquiring_ = true;
        refresh_busy();
        auto failed = co_await attach();
        acquiring_ = false;
        refresh_busy();
        if (failed) {
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
        // attach() may still have waited across a flip (a drain that timed out and went on
        // without it): a connect begun before the flip reaches the old backend. The
        // transaction has not started: back to the gate, then a server of the new epoch.
        if (server_->epoch != shard_.epoch()) {
          server_->stream->cancel();
          detach(false);
          refresh_busy();
          continue;
        }
      }
    }

    if (probing_) {
      // The server reader is asking the server about the session on this connection: the
      // client's next message waits for it, then the boundary is looked at again.
      probe_done_.get(shard_.executor()).expires_at(asio::steady_timer::time_point::max());
      co_await probe_done_.get(shard_.executor()).async_wait(use_nothrow);
      continue;
    }

    // Forward every complete message buffered (pipelines go in one write), stopping before
    // a Terminate so that it is handled above.
    // Messages the prepared-statement tracking rewrites are copied into to_server_; the
    // rest of the batch is forwarded as it came (zero-copy when nothing was rewritten).
    protocol::Bytes data = cin_.readable();
    std::size_t n = 0;
    std::size_t seg = 0;  // start of the bytes not yet copied to to_server_
    bool rewritten = false;
    std::string replacement;
    to_server_.clear();
    while (true) {
      MessageHeader m;
      if (!read_header(data.subspan(n), m)) break;
      if (m.length < 4 || m.length - 4 > max_message || data.size() - n < m.total()) break;
      if (m.type == fe::kTerminate) break;
      account_client_message(m.type);
      note_client_sql(m.type, data.subspan(n + protocol::kHeaderSize, m.length - 4));
      if (tracking()) {
        replacement.clear();
        if (statements_->client_message(server_->statements, m.type,
                                        data.subspan(n + protocol::kHeaderSize, m.length - 4),
                                        replacement)) {
          to_server_.append(reinterpret_cast<const char*>(data.data()) + seg, n - seg);
          to_server_ += replacement;
          seg = n + m.total();
          rewritten = true;
        }
      }
      n += m.total();
    }
    protocol::Bytes out = data.subspan(0, n);
    if (rewritten) {
      to_server_.append(reinterpret_cast<const char*>(data.data()) + seg, n - seg);
      out = protocol::Bytes(reinterpret_cast<const std::uint8_t*>(to_server_.data()),
                            to_server_.size());
    }
    refresh_busy();
    if (!out.empty()) {
      auto stream = server_->stream;  // keeps the socket alive if the server reader drops it
      writing_to_server_ = true;
      auto [ec, written] = co_await stream->write(asio::buffer(out.data(), out.size()));
      writing_to_server_ = false;
      write_done_.cancel();
      if (ec) {
        end_with({EndReason::kServerLost, {}, {}});
        co_return *ending_;
      }
      stats().server_bytes_sent.fetch_add(written, std::memory_order_relaxed);
    }
    cin_.consume(n);
    cin_.shrink(16 * 1024);
  }
}

// Brings the server connection's settings in line with what this client believes, read-only
// mode included: one Query of SETs and RESETs, answers swallowed. Read-only mode is one more
// desired value, so leaving it RESETs default_transaction_read_only to the login default
// (which carries the fence) instead of forcing it off. On failure the connection has been
// released and the session's end is returned.
awaitable<std::optional<EndStatus>> ClientSession::sync_settings(
    std::unique_ptr<ServerConnection>& conn) {
  static constexpr std::string_view kReadOnlyName = "default_transaction_read_only";
  bool read_only_mode = host_.read_only() || read_only_route_;
  auto sync_key = [&] {  // never equal to a plain desired key, which ends in '\0'
    return read_only_mode ? desired_key() + "\x01read-only" : desired_key();
  };
  if (conn->synced_for == sync_key()) co_return std::nullopt;
  const ParamMap* want = &desired();
  ParamMap with_read_only;
  if (read_only_mode) {
    with_read_only = desired();
    with_read_only[std::string(kReadOnlyName)] = "on";
    want = &with_read_only;
  }
  std::vector<std::string> changed, reset;
  std::string sql = build_sync_query(*want, conn->params, changed, reset);
  if (!sql.empty()) {
    stats().param_syncs_total.fetch_add(1, std::memory_order_relaxed);
    InternalQueryResult r = co_await run_internal_query(*conn, sql, settings_->server_limits);
    if (!r.ok) {
      bool usable = r.connection_usable;
      pool_->release(std::move(conn),
                     usable ? ServerPool::Return::kReuse : ServerPool::Return::kClose);
      // The server refused a value the client asked for (e.g. a bad TimeZone in the startup
      // packet): PostgreSQL would have refused the connection.
      if (usable) co_return EndStatus{EndReason::kParamSync, r.error.sqlstate, r.error.message};
      co_return EndStatus{EndReason::kServerLogin, "08006",
                          "server connection lost while preparing it"};
    }
    // What was set, read before set_desired() below: it may replace the desired settings
    // `want` points into (copy-on-write of a shared or interned set).
    std::vector<std::pair<std::string, std::string>> applied;
    for (const std::string& name : changed) {
      auto reported = conn->params.reported.find(name);
      applied.emplace_back(
          name, reported != conn->params.reported.end() ? reported->second : want->at(name));
    }
    GucNameLess less;
    for (const auto& [name, value] : applied) {
      bool reported = conn->params.reported.count(name) != 0;
      bool read_only_mode_value =
          read_only_mode && !less(name, kReadOnlyName) && !less(kReadOnlyName, name);
      if (reported && !read_only_mode_value) {
        set_desired(name, value);  // the server's normal form ("ISO" -> "ISO, MDY")
        if (is_tracked_reported(name)) continue;
      }
      // Not in every client's settings: the next client that does not ask for it gets RESET.
      conn->params.overrides[name] = value;
    }
    for (const std::string& name : reset) conn->params.overrides.erase(name);
  }
  conn->synced_for = sync_key();
  conn->read_only = read_only_mode;
  co_return std::nullopt;
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
  log_held_attached(id_, conn->id, released_at_);
  if (auto failed = co_await sync_settings(conn)) {
    set_state(ClientState::kIdle);
    co_return failed;
  }
  if (!replay_.empty()) {
    // A move: recreate the prepared statements the session had on the old backend.
    int failed =
        co_await run_internal_batch(*conn, replay_, replay_ready_, settings_->server_limits);
    if (failed < 0) {
      pool_->release(std::move(conn), ServerPool::Return::kClose);
      set_state(ClientState::kIdle);
      co_return EndStatus{EndReason::kServerLogin, "08006",
                          "server connection lost while preparing it"};
    }
    log::info("session_moved", {{"session", std::to_string(id_)},
                                {"statements", std::to_string(replay_ready_)},
                                {"failed", std::to_string(failed)}});
    replay_.clear();
    replay_ready_ = 0;
  }
  if (ending_) {
    pool_->release(std::move(conn), ServerPool::Return::kReuse);
    set_state(ClientState::kIdle);
    co_return *ending_;
  }
  server_ = std::move(conn);
  note_server_pid();
  if (track_prepared_) rewriter().reset_conversation();
  tx_.reset();
  set_state(ClientState::kActive);
  ++readers_;
  asio::co_spawn(shard_.executor(), server_reader(shared_from_this(), server_.get()),
                 asio::detached);
  co_return std::nullopt;
}

StatementRewriter& ClientSession::rewriter() {
  if (!statements_) {
    statements_ = std::make_unique<StatementRewriter>(
        static_cast<std::size_t>(settings_->config.proxy.max_prepared_statements), id_);
  }
  return *statements_;
}

void ClientSession::detach(bool reuse) {
  if (!server_) {
    log::error("bug_detach_without_server", {{"session", std::to_string(id_)}});
    return;
  }
  pool_->release(std::move(server_),
                 reuse ? ServerPool::Return::kReuse : ServerPool::Return::kClose);
  server_.reset();
  if (statements_) {
    statements_->reset_conversation();
    // A client that keeps no statement between transactions does not keep the rewriter.
    if (statements_->holds_nothing()) statements_.reset();
  }
  tx_.reset();
  if (state_ == ClientState::kActive) set_state(ClientState::kIdle);
}

awaitable<void> ClientSession::finish(EndStatus status) {
  end_with(status);  // the server reader sees it and stops instead of reporting a lost server
  set_state(ClientState::kClosing);
  // Stop the server reader first: after this no one else writes to the client.
  while (readers_ > 0 && probing_) {
    // The proxy is asking the server about the session (one short query; psycopg's
    // DEALLOCATE ALL after a ROLLBACK triggers it just before many apps disconnect): let it
    // finish rather than close a server connection that is about to be clean and reusable.
    probe_done_.get(shard_.executor()).expires_at(asio::steady_timer::time_point::max());
    co_await probe_done_.get(shard_.executor()).async_wait(use_nothrow);
  }
  bool server_closed = false;  // closed here: never back to the pool, whatever it looks like
  if (readers_ > 0) {
    bool clean = server_ && tx_.free() && !probing_;
    if (server_) {
      if (clean) {
        server_->stream->cancel();
      } else {
        server_->stream->close();
        server_closed = true;
      }
    }
    while (readers_ > 0) {
      reader_done_.get(shard_.executor()).expires_at(asio::steady_timer::time_point::max());
      co_await reader_done_.get(shard_.executor()).async_wait(use_nothrow);
    }
  }
  if (server_) {
    bool clean = !server_closed && tx_.free() && !probing_ && server_->in.empty() &&
                 status.reason != EndReason::kServerLost;
    if (clean && (settings_->config.proxy.pool_mode == PoolMode::kSession || pinned_)) {
      // Whatever the client did to its session (SET, PREPARE, temp tables, LISTEN) must not
      // reach the next client.
      InternalQueryResult r =
          co_await run_internal_query(*server_, "DISCARD ALL", settings_->server_limits);
      clean = r.ok;
      if (clean) {
        server_->params.overrides.clear();
        server_->read_only = false;  // DISCARD ALL reset default_transaction_read_only too
        server_->statements.prepared.clear();
      }
    }
    // A client that vanished mid-transaction leaves the server in an unknown state: close it.
    detach(clean);
  }
  set_pinned(false);
  refresh_busy();
  Fatal f = fatal_for(status.reason);
  if (f.send) {
    std::string out, sqlstate = status.sqlstate.empty() ? f.sqlstate : status.sqlstate;
    std::string message = status.message.empty() ? f.message : status.message;
    protocol::append_error_response(
        out,
        {.severity = "FATAL", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
    stats().count_error(sqlstate);
    co_await write_client(out);
    client_->discard_unread();
  }
  if (status.reason != EndReason::kClientTerminate && status.reason != EndReason::kCancelRequest) {
    log::info("client_closed",
              {{"session", std::to_string(id_)},
               {"user", user_},
               {"reason", reason_name(status.reason)},
               {"sqlstate", status.sqlstate.empty() ? f.sqlstate : status.sqlstate}});
  }
  client_->close();
  if (held_since_ != std::chrono::steady_clock::time_point{}) held_waits().forget(id_);
  if (registered_) host_.cancels().remove(cancel_key_);
  host_.session_ended(id_);
  host_.client_count().fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace pgcutover::proxy
