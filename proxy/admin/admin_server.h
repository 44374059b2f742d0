// The admin API's HTTP server (Boost.Beast), on its own thread and io_context so that nothing
// the data plane does can slow an operator's pause or resume, and the reverse.
//
// Security: bound to 127.0.0.1 by default; every route but the ones
// registered as public needs `Authorization: Bearer <token>` (constant-time compare, see
// http_auth.h), checked after reading the headers and before reading any body, so an
// unauthenticated client cannot make the server buffer anything. Limits: header size (431),
// body size (413), a read timeout for the whole request (slowloris), a maximum number of
// connections (extra ones are closed at accept). TLS optional (TLS 1.2 minimum).
//
// Handlers are plain blocking functions run on a small worker pool: a flip that takes seconds
// occupies one worker, and /v1/status, /metrics and /healthz keep answering meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pgcutover::proxy {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string
  std::string query;   // after '?', empty when none
  std::string body;
  std::string content_type;
  std::string remote;  // peer ip:port, for logs
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpReply json(int status, std::string body) {
    HttpReply r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  // {"error": code, "message": message}
  static HttpReply error(int status, std::string_view code, std::string_view message);
};

using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

enum class RouteAccess { kToken, kPublic };

struct AdminServerOptions {
  std::string listen_addr = "127.0.0.1";
  std::uint16_t port = 6480;  // 0: any free port (tests); see AdminServer::port()
  std::string token;          // secret; empty: every token-protected route answers 401
  std::string tls_cert_file;  // both set: HTTPS only
  std::string tls_key_file;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{10000};  // whole request, and keep-alive idle time
  int max_connections = 64;
  int worker_threads = 2;
  // A listening socket handed over by the previous proxy process (proxy/runtime/handover.h):
  // used instead of binding listen_addr:port. -1: bind.
  int inherited_listener = -1;
};

class AdminServer {
 public:
  explicit AdminServer(AdminServerOptions options);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Register before start(). Same path with several methods is fine; a known path with another
  // method answers 405 with Allow.
  void route(std::string method, std::string path, HttpHandler handler,
             RouteAccess access = RouteAccess::kToken);

  // Runs one request through the routes without HTTP and without the token check, on the
  // caller's thread (it may block for a drain): for callers that authenticated the request
  // another way, such as the fleet channel (proxy/fleet/fleet_agent.h), whose commands come
  // from rows only the database's owner may write. Works whether or not start() was called.
  HttpReply dispatch(const HttpRequest& request) const;

  // Binds, listens and starts the server thread. false with `error` set (bind failure, bad TLS
  // files); never throws.
  bool start(std::string& error);
  // The bound port (useful with port 0). 0 before start().
  std::uint16_t port() const;
  // The listening socket's descriptor (to hand over to a successor), -1 before start().
  int listener() const;
  // Stops accepting, closes connections, waits for running handlers. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgcutover::proxy
