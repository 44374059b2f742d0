#include "proxy/admin/admin_server.h"

#include <unistd.h>

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <optional>
#include <thread>

#include "common/json.h"
#include "common/log.h"
#include "proxy/admin/http_auth.h"

namespace pgcutover::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

struct Route {
  HttpHandler handler;
  RouteAccess access = RouteAccess::kToken;
};

std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

HttpReply call_handler(const HttpHandler& h, const HttpRequest& req) {
  try {
    return h(req);
  } catch (const std::exception& e) {
    // A handler bug must not take the admin server down; the message may be internal, so it
    // goes to the log, not to the client.
    log::error("admin_handler_exception", {{"path", req.path}, {"what", e.what()}});
  } catch (...) {
    log::error("admin_handler_exception", {{"path", req.path}});
  }
  return HttpReply::error(500, "internal", "internal error");
}

}  // namespace

HttpReply HttpReply::error(int status, std::string_view code, std::string_view message) {
  HttpReply r;
  r.status = status;
  json::Writer w;
  w.begin_object().field("error", code).field("message", message).end_object();
  r.body = w.take();
  return r;
}

struct AdminServer::Impl {
  explicit Impl(AdminServerOptions o)
      : opts(std::move(o)), token(opts.token), workers(std::max(1, opts.worker_threads)) {}

  // Declared first so it is destroyed last: coroutine frames it owns refer to the rest.
  asio::io_context ioc{1};
  AdminServerOptions opts;
  BearerToken token;
  std::map<std::string, std::map<std::string, Route>, std::less<>> routes;  // path -> method
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor{ioc};
  asio::thread_pool workers;
  std::thread thread;
  std::atomic<int> connections{0};
  std::atomic<std::uint16_t> bound_port{0};
  bool started = false;
  bool stopped = false;

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        log::warn("admin_accept_error", {{"error", ec.message()}});
        continue;
      }
      if (connections.load() >= opts.max_connections) {
        // Over the limit: close at once rather than queue, so a flood costs nothing.
        log::warn("admin_connection_limit", {{"peer", peer_of(socket)}});
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++connections;
      asio::co_spawn(ioc, session(std::move(socket)), [this](std::exception_ptr e) {
        --connections;
        if (e) log::error("admin_session_exception", {});
      });
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    std::string peer = peer_of(socket);
    beast::tcp_stream stream(std::move(socket));
    if (!tls) {
      co_await serve(stream, peer);
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> ssl(std::move(stream), *tls);
    beast::get_lowest_layer(ssl).expires_after(opts.read_timeout);
    auto [ec] = co_await ssl.async_handshake(asio::ssl::stream_base::server, kAsTuple);
    if (ec) {
      log::debug("admin_tls_handshake_failed", {{"peer", peer}, {"error", ec.message()}});
      co_return;
    }
    co_await serve(ssl, peer);
    beast::get_lowest_layer(ssl).expires_after(std::chrono::seconds(1));
    co_await ssl.async_shutdown(kAsTuple);
  }

  template <class Stream>
  asio::awaitable<bool> write(Stream& stream, unsigned version, bool keep_alive,
                              const HttpReply& reply) {
    http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
    res.set(http::field::server, "pgcutover");
    res.set(http::field::content_type, reply.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto& [k, v] : reply.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = reply.body;
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, kAsTuple);
    co_return !ec && keep_alive;
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, const std::string& peer) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
      parser.body_limit(opts.max_body_bytes);
      // One deadline for the whole request (headers and body): a client trickling bytes
      // (slowloris) is dropped when it runs out; it also bounds keep-alive idle time.
      beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kAsTuple);
      if (ec == http::error::header_limit) {
        co_await write(stream, 11, false,
                       HttpReply::error(431, "header_too_large", "headers too large"));
        co_return;
      }
      if (ec == http::error::body_limit) {  // Content-Length already over the limit
        co_await write(stream, 11, false,
                       HttpReply::error(413, "body_too_large", "request body too large"));
        co_return;
      }
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::eof && ec != asio::error::connection_reset) {
          co_await write(stream, 11, false,
                         HttpReply::error(400, "bad_request", "malformed HTTP request"));
        }
        co_return;
      }
      auto& head = parser.get();
      const unsigned version = head.version();
      HttpRequest req;
      req.method = std::string(head.method_string());
      std::string_view target = head.target();
      auto q = target.find('?');
      req.path = std::string(target.substr(0, q));
      if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
      req.content_type = std::string(head[http::field::content_type]);
      req.remote = peer;

      const Route* route = nullptr;
      auto path_it = routes.find(req.path);
      if (path_it != routes.end()) {
        auto m = path_it->second.find(req.method);
        if (m != path_it->second.end()) route = &m->second;
      }
      // Authenticate before anything else (including 404/405, so paths are no oracle) and
      // before reading the body.
      if (route == nullptr || route->access != RouteAccess::kPublic) {
        if (!token.check(head[http::field::authorization])) {
          log::warn("admin_unauthorized",
                    {{"peer", peer}, {"method", req.method}, {"path", req.path}});
          HttpReply r = HttpReply::error(401, "unauthorized", "a valid bearer token is required");
          r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pgcutover\"");
          // The body (if any) was not read: the connection cannot be reused.
          co_await write(stream, version, false, r);
          co_return;
        }
      }
      if (!parser.is_done()) {
        auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kAsTuple);
        if (bec == http::error::body_limit) {
          co_await write(stream, version, false,
                         HttpReply::error(413, "body_too_large", "request body too large"));
          co_return;
        }
        if (bec) co_return;  // timeout or closed mid-body
      }
      req.body = std::move(parser.get().body());
      const bool keep_alive = parser.get().keep_alive();

      HttpReply reply;
      if (path_it == routes.end()) {
        reply = HttpReply::error(404, "not_found", "no such endpoint");
      } else if (route == nullptr) {
        reply = HttpReply::error(405, "method_not_allowed", "method not allowed");
        std::string allow;
        for (const auto& [method, r] : path_it->second)
          allow += (allow.empty() ? "" : ", ") + method;
        reply.headers.emplace_back("Allow", allow);
      } else {
        // Run the handler on the worker pool; the coroutine resumes here when it is done.
        const HttpHandler* h = &route->handler;
        reply = co_await asio::co_spawn(
            workers, [h, &req]() -> asio::awaitable<HttpReply> { co_return call_handler(*h, req); },
            asio::use_awaitable);
      }
      if (reply.status >= 400 && reply.status != 404) {
        log::info("admin_request", {{"peer", peer},
                                    {"method", req.method},
                                    {"path", req.path},
                                    {"status", std::to_string(reply.status)}});
      }
      if (!co_await write(stream, version, keep_alive, reply)) co_return;
    }
  }
};

AdminServer::AdminServer(AdminServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::route(std::string method, std::string path, HttpHandler handler,
                        RouteAccess access) {
  impl_->routes[std::move(path)][std::move(method)] = Route{std::move(handler), access};
}

HttpReply AdminServer::dispatch(const HttpRequest& request) const {
  auto path_it = impl_->routes.find(request.path);
  if (path_it == impl_->routes.end()) return HttpReply::error(404, "not_found", "no such endpoint");
  auto m = path_it->second.find(request.method);
  if (m == path_it->second.end())
    return HttpReply::error(405, "method_not_allowed", "method not allowed");
  return call_handler(m->second.handler, request);
}

bool AdminServer::start(std::string& error) {
  Impl& s = *impl_;
  if (s.started) {
    error = "admin server already started";
    return false;
  }
  if (!s.token.configured()) {
    log::warn("admin_no_token",
              {{"detail", "[admin] token is empty: every protected endpoint answers 401"}});
  }
  try {
    if (!s.opts.tls_cert_file.empty() || !s.opts.tls_key_file.empty()) {
      s.tls.emplace(asio::ssl::context::tls_server);
      SSL_CTX_set_min_proto_version(s.tls->native_handle(), TLS1_2_VERSION);
      s.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
      s.tls->use_certificate_chain_file(s.opts.tls_cert_file);
      s.tls->use_private_key_file(s.opts.tls_key_file, asio::ssl::context::pem);
    }
    tcp::endpoint ep(asio::ip::make_address(s.opts.listen_addr), s.opts.port);
    if (s.opts.inherited_listener >= 0) {
      s.acceptor.assign(ep.protocol(), s.opts.inherited_listener);
    } else {
      s.acceptor.open(ep.protocol());
      s.acceptor.set_option(asio::socket_base::reuse_address(true));
      s.acceptor.bind(ep);
      s.acceptor.listen(asio::socket_base::max_listen_connections);
    }
    s.bound_port = s.acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    error = "admin " + s.opts.listen_addr + ":" + std::to_string(s.opts.port) + ": " + e.what();
    boost::system::error_code ignored;
    s.acceptor.close(ignored);
    return false;
  }
  s.started = true;
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  s.thread = std::thread([&s] {
    try {
      s.ioc.run();
    } catch (const std::exception& e) {
      log::error("admin_io_exception", {{"what", e.what()}});
    }
  });
  log::info("admin_listening", {{"addr", s.opts.listen_addr},
                                {"port", std::to_string(s.bound_port.load())},
                                {"tls", s.tls ? "on" : "off"}});
  return true;
}

int AdminServer::listener() const {
  return impl_->started ? impl_->acceptor.native_handle() : -1;
}

std::uint16_t AdminServer::port() const {
  return impl_->bound_port.load();
}

void AdminServer::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  asio::post(s.ioc, [&s] {
    // release() then close: the socket may live on in a successor process (a hand-over), and
    // only release() takes it out of this process's epoll set (close() leaves a shared one in).
    boost::system::error_code ignored;
    if (s.acceptor.is_open()) {
      int fd = s.acceptor.release(ignored);
      if (fd >= 0) ::close(fd);
    }
    s.ioc.stop();
  });
  if (s.thread.joinable()) s.thread.join();
  // Handlers still running (a flip) finish; their replies have nowhere to go.
  s.workers.join();
}

}  // namespace pgcutover::proxy
