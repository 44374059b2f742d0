#include "proxy/pool/server_connection.h"

// GCC 12 reports Asio's coroutine frame operator delete as mismatched with its operator new
// (a false positive: both are awaitable_frame_base's own recycling allocator pair).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>

#include "common/log.h"
#include "protocol/auth.h"
#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/net/deadline.h"
#include "proxy/net/message_io.h"
#include "proxy/settings/backend_secret.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {
namespace {

std::atomic<std::uint64_t> next_server_id{1};

ServerError err(std::string sqlstate, std::string message) {
  return {std::move(sqlstate), std::move(message)};
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Opens TCP, then negotiates TLS per sslmode the way libpq does: SSLRequest, one byte back.
// `out` is created before connecting so that the caller's deadline can close it at any step.
awaitable<ServerError> open_transport(const BackendEndpoint& ep, std::shared_ptr<Stream>& out,
                                      std::shared_ptr<std::weak_ptr<Stream>> watch) {
  const Backend& b = ep.backend;
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(b.url.host, std::to_string(b.url.port), use_nothrow);
  if (rec)
    co_return err("08001", "could not resolve backend \"" + b.name + "\" host " + b.url.host +
                               ": " + rec.message());
  out = std::make_shared<Stream>(tcp::socket(ex));
  *watch = out;
  error_code cec = co_await out->connect(endpoints);
  if (cec) {
    co_return err("08001", "could not connect to backend \"" + b.name + "\" (" + b.url.host + ":" +
                               std::to_string(b.url.port) + "): " + cec.message());
  }
  if (b.sslmode == SslMode::kDisable) co_return ServerError{};
  std::string req;
  protocol::append_ssl_request(req);
  auto [wec, wn] = co_await out->write(asio::buffer(req));
  if (wec)
    co_return err("08006", "backend \"" + b.name + "\": SSLRequest failed: " + wec.message());
  char answer = 0;
  auto [aec, an] = co_await out->read_some(asio::buffer(&answer, 1));
  if (aec || an != 1)
    co_return err("08006",
                  "backend \"" + b.name + "\" closed the connection during SSL negotiation");
  if (answer != 'S')
    co_return err("08001", "backend \"" + b.name + "\" does not support SSL but sslmode is " +
                               std::string(to_string(b.sslmode)));
  std::string verify_host = b.sslmode == SslMode::kVerifyFull ? b.url.host : std::string();
  std::string sni = is_ip_literal(b.url.host) ? std::string() : b.url.host;
  error_code hec = co_await out->tls_connect(*ep.tls, sni, verify_host);
  if (hec) {
    stats().tls_handshake_failures_total.fetch_add(1, std::memory_order_relaxed);
    co_return err("08001",
                  "TLS handshake with backend \"" + b.name + "\" failed: " + hec.message());
  }
  stats().server_tls_handshakes_total.fetch_add(1, std::memory_order_relaxed);
  co_return ServerError{};
}

awaitable<ServerError> login(ServerConnection& conn, const std::string& password,
                             const protocol::Limits& limits, const StartupParams& extra) {
  const Backend& b = conn.endpoint->backend;
  Stream& s = *conn.stream;
  std::vector<std::pair<std::string, std::string>> params = {{"user", b.url.user},
                                                             {"database", b.url.dbname}};
  for (const auto& p : b.url.startup_params) params.push_back(p);
  for (const auto& p : extra) params.push_back(p);
  std::string out;
  protocol::append_startup_message(out, params);
  if (auto [ec, n] = co_await s.write(asio::buffer(out)); ec)
    co_return err("08006", "backend \"" + b.name + "\": write failed: " + ec.message());
  std::optional<protocol::ScramClient> scram;
  for (;;) {
    ReadMessage m = co_await read_message(s, conn.in, limits);
    if (!m.ok())
      co_return err("08006", "backend \"" + b.name + "\" closed the connection during login");
    protocol::Bytes body = protocol::as_bytes(m.body);
    switch (m.type) {
      case protocol::backend::kAuthentication: {
        auto a = protocol::parse_authentication(body);
        if (!a)
          co_return err("08P01",
                        "backend \"" + b.name + "\" sent a malformed authentication request");
        out.clear();
        switch (a->code) {
          case protocol::AuthCode::kOk:
            continue;
          case protocol::AuthCode::kCleartextPassword:
            protocol::append_password_message(out, password);
            break;
          case protocol::AuthCode::kMd5Password:
            if (a->data.size() != 4)
              co_return err("08P01", "backend \"" + b.name + "\" sent a malformed md5 salt");
            protocol::append_password_message(
                out, protocol::md5_response(b.url.user, password, a->data.data()));
            break;
          case protocol::AuthCode::kSasl: {
            auto mechs = protocol::parse_sasl_mechanisms(a->data);
            bool has_scram = false;
            if (mechs) {
              for (auto mname : *mechs) has_scram |= mname == "SCRAM-SHA-256";
            }
            if (!has_scram)
              co_return err("08001", "backend \"" + b.name +
                                         "\" offers no SASL mechanism the proxy supports");
            scram.emplace(password);
            protocol::append_sasl_initial_response(out, "SCRAM-SHA-256", scram->client_first());
            break;
          }
          case protocol::AuthCode::kSaslContinue: {
            if (!scram)
              co_return err("08P01", "backend \"" + b.name + "\" sent SASLContinue out of order");
            auto step = scram->handle_server_first(protocol::as_chars(a->data));
            if (!step.ok) co_return err("08001", "backend \"" + b.name + "\" SCRAM: " + step.error);
            protocol::append_sasl_response(out, step.message);
            break;
          }
          case protocol::AuthCode::kSaslFinal: {
            if (!scram)
              co_return err("08P01", "backend \"" + b.name + "\" sent SASLFinal out of order");
            auto step = scram->handle_server_final(protocol::as_chars(a->data));
            // The server must prove it knows the verifier: otherwise it may be an impostor.
            if (!step.ok)
              co_return err("08001", "backend \"" + b.name +
                                         "\" SCRAM server signature check failed: " + step.error);
            continue;
          }
          default:
            co_return err("08001", "backend \"" + b.name +
                                       "\" requested an unsupported authentication method (" +
                                       std::to_string(static_cast<int>(a->code)) + ")");
        }
        if (auto [ec, n] = co_await s.write(asio::buffer(out)); ec)
          co_return err("08006", "backend \"" + b.name + "\": write failed");
        break;
      }
      case protocol::backend::kParameterStatus: {
        if (auto p = protocol::parse_parameter_status(body)) {
          conn.params.reported[std::string(p->name)] = std::string(p->value);
        }
        break;
      }
      case protocol::backend::kBackendKeyData: {
        if (auto k = protocol::parse_backend_key_data(body)) {
          conn.pid = k->pid;
          conn.key = k->key;
        }
        break;
      }
      case protocol::backend::kErrorResponse: {
        auto e = protocol::parse_error_notice(body);
        std::string sqlstate = e && e->sqlstate.size() == 5 ? std::string(e->sqlstate) : "08006";
        std::string msg = e ? std::string(e->message) : "malformed error";
        co_return err(sqlstate, "backend \"" + b.name + "\" refused the login: " + msg);
      }
      case protocol::backend::kReadyForQuery:
        conn.initial_reported = conn.params.reported;
        conn.listed = server_pids().add(b.name, conn.pid);
        co_return ServerError{};
      case protocol::backend::kNoticeResponse:
      case protocol::backend::kNegotiateProtocolVersion:
        break;
      default:
        co_return err("08P01",
                      "backend \"" + b.name + "\" sent an unexpected message during login");
    }
  }
}

}  // namespace

ServerConnection::~ServerConnection() {
  if (stream) stream->close();
}

namespace {

// The backend refused the credentials (invalid_authorization_specification, invalid_password):
// the case where a rotated password is worth re-reading.
bool is_auth_failure(const ServerError& e) {
  return e.sqlstate.size() == 5 && e.sqlstate.compare(0, 2, "28") == 0;
}

// One attempt: connect, TLS and login with `password`, within `timeout`.
awaitable<ConnectResult> connect_once(std::shared_ptr<const BackendEndpoint> endpoint,
                                      std::uint64_t epoch, asio::chrono::milliseconds timeout,
                                      const protocol::Limits& limits, const std::string& password,
                                      const StartupParams& extra) {
  ConnectResult r;
  auto ex = co_await asio::this_coro::executor;
  auto conn = std::make_unique<ServerConnection>();
  conn->endpoint = endpoint;
  conn->epoch = epoch;
  conn->id = next_server_id.fetch_add(1, std::memory_order_relaxed);
  // One deadline covers connect + TLS + login: the timer closes whatever stream exists.
  asio::steady_timer timer(ex);
  auto fired = std::make_shared<bool>(false);
  auto current = std::make_shared<std::weak_ptr<Stream>>();
  timer.expires_after(timeout);
  timer.async_wait([fired, current](error_code ec) {
    if (ec) return;
    *fired = true;
    if (auto s = current->lock()) s->close();
  });
  std::shared_ptr<Stream> stream;
  // Name resolution is not cancelled by the timer; its result is discarded when the deadline
  // already passed.
  ServerError e = co_await open_transport(*endpoint, stream, current);
  if (*fired) e = err("08001", "timeout connecting to backend \"" + endpoint->backend.name + "\"");
  if (e.empty()) {
    conn->stream = stream;
    e = co_await login(*conn, password, limits, extra);
    if (!e.empty() && *fired)
      e = err("08001", "timeout logging in to backend \"" + endpoint->backend.name + "\"");
  }
  timer.cancel();
  if (!e.empty()) {
    r.error = std::move(e);
    co_return r;
  }
  conn->created = conn->last_used = Clock::now();
  r.conn = std::move(conn);
  co_return r;
}

}  // namespace

awaitable<ConnectResult> connect_server(std::shared_ptr<const BackendEndpoint> endpoint,
                                        std::uint64_t epoch, asio::chrono::milliseconds timeout,
                                        protocol::Limits limits, StartupParams extra) {
  const Backend& b = endpoint->backend;
  const auto started = std::chrono::steady_clock::now();
  auto [password, generation] = endpoint->secret
                                    ? endpoint->secret->current()
                                    : std::pair<std::string, std::uint64_t>{b.url.password, 0};
  ConnectResult r = co_await connect_once(endpoint, epoch, timeout, limits, password, extra);
  if (is_auth_failure(r.error) && endpoint->secret && endpoint->secret->refreshable()) {
    // Rotated underneath us? Re-read the password source once and retry with what it holds
    // now, so the client that hit the rotation does not see the error.
    if (co_await refresh_secret(endpoint->secret, generation)) {
      std::tie(password, generation) = endpoint->secret->current();
      r = co_await connect_once(endpoint, epoch, timeout, limits, password, extra);
    }
  }
  if (!r.conn) {
    if (is_auth_failure(r.error)) {
      note_backend_auth_failure(b.name, b.url.user, describe(b.password_source), r.error.message);
    } else {
      log::warn("server_connect_failed",
                {{"backend", b.name}, {"sqlstate", r.error.sqlstate}, {"error", r.error.message}});
    }
    co_return r;
  }
  note_backend_auth_success(b.name);
  stats().server_connections_total.fetch_add(1, std::memory_order_relaxed);
  log::debug("server_connected",
             {{"backend", b.name},
              {"server_id", std::to_string(r.conn->id)},
              {"epoch", std::to_string(epoch)},
              {"login_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count())}});
  co_return r;
}

awaitable<InternalQueryResult> run_internal_query(ServerConnection& conn, std::string_view sql,
                                                  const protocol::Limits& limits) {
  InternalQueryResult r;
  conn.synced_for.clear();  // whatever it runs may change settings
  std::string out;
  protocol::append_query(out, sql);
  if (auto [ec, n] = co_await conn.stream->write(asio::buffer(out)); ec) {
    r.error = err("08006", "server connection lost");
    co_return r;
  }
  for (;;) {
    ReadMessage m = co_await read_message(*conn.stream, conn.in, limits);
    if (!m.ok()) {
      r.error = err("08006", "server connection lost");
      co_return r;
    }
    protocol::Bytes body = protocol::as_bytes(m.body);
    switch (m.type) {
      case protocol::backend::kParameterStatus:
        if (auto p = protocol::parse_parameter_status(body)) {
          conn.params.reported[std::string(p->name)] = std::string(p->value);
        }
        break;
      case protocol::backend::kErrorResponse:
        if (auto e = protocol::parse_error_notice(body)) {
          r.error = err(std::string(e->sqlstate), std::string(e->message));
        } else {
          r.error = err("XX000", "malformed error from server");
        }
        break;
      case protocol::backend::kReadyForQuery: {
        auto z = protocol::parse_ready_for_query(body);
        r.connection_usable = z && z->status == 'I' && conn.in.empty();
        r.ok = r.connection_usable && r.error.empty();
        co_return r;
      }
      case protocol::backend::kCopyInResponse:
      case protocol::backend::kCopyOutResponse:
      case protocol::backend::kCopyBothResponse:
        // Never expected from SET/RESET/DISCARD: the connection's state is unknown.
        r.error = err("XX000", "unexpected COPY from an internal query");
        co_return r;
      default:
        break;  // CommandComplete, NoticeResponse, ...
    }
  }
}

awaitable<bool> send_cancel(std::shared_ptr<const BackendEndpoint> endpoint, std::int32_t pid,
                            std::int32_t key, asio::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  auto current = std::make_shared<std::weak_ptr<Stream>>();
  timer.expires_after(timeout);
  timer.async_wait([current](error_code ec) {
    if (ec) return;
    if (auto s = current->lock()) s->close();
  });
  std::shared_ptr<Stream> stream;
  ServerError e = co_await open_transport(*endpoint, stream, current);
  bool ok = false;
  if (e.empty()) {
    std::string out;
    protocol::append_cancel_request(out, pid, key);
    auto [ec, n] = co_await stream->write(asio::buffer(out));
    ok = !ec;
    if (ok) {
      // PostgreSQL answers nothing and closes; wait for that so the cancel is delivered
      // before we report it done.
      char c;
      co_await stream->read_some(asio::buffer(&c, 1));
    }
  }
  timer.cancel();
  if (stream) stream->close();
  if (!ok)
    log::warn("cancel_forward_failed", {{"backend", endpoint->backend.name}, {"error", e.message}});
  co_return ok;
}

}  // namespace pgcutover::proxy
