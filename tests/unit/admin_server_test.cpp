// The admin API over real HTTP on loopback: authentication (401 without or with a wrong token,
// constant-time check), public liveness, routing errors (404/405/400), limits (413, 431,
// slowloris, connection cap), /metrics exposition, and cutover commands end to end with a fake
// data plane, including that a long command does not block other requests.
#include "proxy/admin/admin_server.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <optional>

#include "proxy/admin/admin_routes.h"
#include "proxy/admin/http_auth.h"
#include "proxy/cutover/cutover_engine.h"
#include "proxy/telemetry/cutover_metrics.h"
#include "proxy/telemetry/metrics.h"

namespace pgcutover::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* kToken = "test-token-0123456789";

struct Resp {
  int status = 0;
  std::string body;
  http::response<http::string_body> raw;
};

// One HTTP client connection (keep-alive capable).
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Resp send(http::verb verb, const std::string& target, std::optional<std::string> token = kToken,
            std::string body = "", bool keep_alive = true) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (token) req.set(http::field::authorization, "Bearer " + *token);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.keep_alive(keep_alive);
    req.prepare_payload();
    stream_.expires_after(10s);
    http::write(stream_, req);
    return read();
  }
  Resp read() {
    Resp r;
    stream_.expires_after(10s);
    http::read(stream_, buffer_, r.raw);
    r.status = static_cast<int>(r.raw.result_int());
    r.body = r.raw.body();
    return r;
  }
  // Reads until the server closes; returns the error that ended the read.
  boost::system::error_code wait_closed(std::chrono::seconds limit = 5s) {
    stream_.expires_after(limit);
    char buf[512];
    boost::system::error_code ec;
    for (;;) {
      stream_.read_some(asio::buffer(buf), ec);
      if (ec) return ec;
    }
  }
  beast::tcp_stream& stream() { return stream_; }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

class FakeDataPlane : public TrafficControl {
 public:
  void close_gate() override {}
  void open_gate() override {}
  int transactions_in_flight() override { return in_flight.load(); }
  int held_clients() override { return 0; }
  int pinned_sessions() override { return 0; }
  std::vector<ClientInfo> blockers() override { return {}; }
  void cancel_in_flight() override {}
  void terminate_in_flight() override {}
  bool retarget(const std::string&, std::uint64_t) override { return true; }
  bool prewarm(const std::string&, Millis, bool) override { return true; }
  void set_read_only(bool) override {}
  std::vector<SessionInfo> unmovable_sessions() override { return {}; }
  std::atomic<int> in_flight{0};
};

class MemoryStore : public StateStore {
 public:
  bool persist(const std::string&, std::uint64_t) override { return true; }
};

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(AdminRouteOptions route_options, AdminServerOptions o = {}) {
    server.reset();
    o.port = 0;
    o.token = kToken;
    if (o.read_timeout == AdminServerOptions{}.read_timeout) o.read_timeout = 2s;
    server = std::make_unique<AdminServer>(o);
    if (!route_options.metrics_text)
      route_options.metrics_text = [this] { return metrics.render_text(); };
    register_admin_routes(*server, engine, std::move(route_options));
    std::string err;
    ASSERT_TRUE(server->start(err)) << err;
    ASSERT_NE(server->port(), 0);
  }
  void TearDown() override {
    server.reset();
    dp.in_flight = 0;
  }
  CutoverOptions engine_options() {
    CutoverOptions o;
    o.backends = {"source", "target"};
    o.active_backend = "source";
    o.drain_timeout = 10s;
    return o;
  }

  Metrics metrics{{"source", "target"}};
  FakeDataPlane dp;
  MemoryStore store;
  CutoverMetrics reports{metrics};
  CutoverEngine engine{dp, store, engine_options(), &reports};
  std::unique_ptr<AdminServer> server;
};

// Without a token: 401, a JSON error and WWW-Authenticate: Bearer.
TEST_F(AdminServerTest, MissingTokenIs401) {
  Client c(server->port());
  Resp r = c.send(http::verb::get, "/v1/status", std::nullopt);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("\"error\":\"unauthorized\""), std::string::npos);
  EXPECT_EQ(std::string(r.raw[http::field::www_authenticate]).rfind("Bearer", 0), 0u);
  EXPECT_EQ(r.body.find("source"), std::string::npos);  // nothing about the proxy leaks
}

// A wrong token (including a prefix of the right one) is 401; commands do not run.
TEST_F(AdminServerTest, WrongTokenIs401) {
  for (std::string bad : {"nope", "test-token-012345678", "test-token-01234567890", ""}) {
    Client c(server->port());
    EXPECT_EQ(c.send(http::verb::post, "/v1/pause", bad).status, 401) << bad;
  }
  EXPECT_EQ(engine.status().state, CutoverState::kRunning);
}

// Unknown paths need the token too (no path oracle), then answer 404.
TEST_F(AdminServerTest, UnknownPathIs401Then404) {
  Client c(server->port());
  EXPECT_EQ(c.send(http::verb::get, "/v1/nothing", std::nullopt).status, 401);
  Client c2(server->port());
  EXPECT_EQ(c2.send(http::verb::get, "/v1/nothing").status, 404);
}

// With the token: 200 and the status document; keep-alive serves several requests.
TEST_F(AdminServerTest, StatusWithTokenKeepAlive) {
  Client c(server->port());
  for (int i = 0; i < 3; ++i) {
    Resp r = c.send(http::verb::get, "/v1/status");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"state\":\"running\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"backend\":\"source\""), std::string::npos);
    EXPECT_NE(r.body.find("\"epoch\":0"), std::string::npos);
    EXPECT_EQ(r.raw[http::field::content_type], "application/json");
  }
}

// Wrong method on a known path: 405 with Allow.
TEST_F(AdminServerTest, WrongMethodIs405) {
  Client c(server->port());
  Resp r = c.send(http::verb::get, "/v1/flip");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.raw[http::field::allow], "POST");
}

// /healthz answers without a token and says nothing about the proxy.
TEST_F(AdminServerTest, HealthzIsPublicAndOpaque) {
  Client c(server->port());
  Resp r = c.send(http::verb::get, "/healthz", std::nullopt);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"status\":\"ok\"}");
  Client c2(server->port());
  EXPECT_EQ(c2.send(http::verb::get, "/readyz", std::nullopt).status, 200);
}

// /readyz reflects the proxy's readiness callback, with the body it gives (the reason).
TEST_F(AdminServerTest, ReadyzFollowsCallback) {
  AdminRouteOptions o;
  o.ready = [](std::string& body) {
    body = "{\"ready\":false,\"reason\":\"login refused\"}";
    return false;
  };
  start(o);
  Client c(server->port());
  Resp r = c.send(http::verb::get, "/readyz", std::nullopt);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"ready\":false,\"reason\":\"login refused\"}");
}

// Malformed, unknown-field and missing-field bodies: 400, nothing runs.
TEST_F(AdminServerTest, BadBodiesAre400) {
  const char* bodies[] = {"{",
                          "{\"backend\":\"target\"}",
                          "{\"backend\":1,\"epoch\":0}",
                          "{\"backend\":\"target\",\"epoch\":-1}",
                          "{\"backend\":\"target\",\"epoch\":0,\"force\":true}",
                          "[1]",
                          "{\"backend\":\"target\",\"epoch\":1.5}"};
  for (const char* body : bodies) {
    Client c(server->port());
    Resp r = c.send(http::verb::post, "/v1/flip", kToken, body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.body.find("\"error\":\"bad_request\""), std::string::npos);
  }
  Client c(server->port());
  EXPECT_EQ(c.send(http::verb::post, "/v1/readonly", kToken, "{\"enabled\":\"yes\"}").status, 400);
  Client c2(server->port());
  EXPECT_EQ(c2.send(http::verb::post, "/v1/pause", kToken, "{\"drain_policy\":\"later\"}").status,
            400);
  EXPECT_EQ(engine.status().epoch, 0u);
  EXPECT_EQ(engine.status().state, CutoverState::kRunning);
}

// A body over the limit is refused with 413 (the server does not buffer it).
TEST_F(AdminServerTest, OversizeBodyIs413) {
  Client c(server->port());
  Resp r = c.send(http::verb::post, "/v1/pause", kToken, std::string(100 * 1024, ' '));
  EXPECT_EQ(r.status, 413);
}

// Headers over the limit: 431.
TEST_F(AdminServerTest, OversizeHeadersAre431) {
  Client c(server->port());
  http::request<http::string_body> req{http::verb::get, "/v1/status", 11};
  req.set("X-Junk", std::string(16 * 1024, 'a'));
  req.set(http::field::authorization, std::string("Bearer ") + kToken);
  http::write(c.stream(), req);
  EXPECT_EQ(c.read().status, 431);
}

// A client that sends half a request and stalls is disconnected after the read timeout.
TEST_F(AdminServerTest, SlowlorisIsDisconnected) {
  AdminServerOptions o;
  o.read_timeout = 200ms;
  start({}, o);
  Client c(server->port());
  std::string partial = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
  asio::write(c.stream().socket(), asio::buffer(partial));
  auto t = std::chrono::steady_clock::now();
  auto ec = c.wait_closed();
  EXPECT_NE(ec, beast::error::timeout) << "server did not close the connection";
  EXPECT_LT(std::chrono::steady_clock::now() - t, 4s);
}

// Beyond max_connections, new connections are closed at once.
TEST_F(AdminServerTest, ConnectionCap) {
  AdminServerOptions o;
  o.max_connections = 2;
  start({}, o);
  Client a(server->port());
  Client b(server->port());
  ASSERT_EQ(a.send(http::verb::get, "/v1/status").status, 200);
  ASSERT_EQ(b.send(http::verb::get, "/v1/status").status, 200);
  Client c(server->port());
  EXPECT_NE(c.wait_closed(), beast::error::timeout);
}

// /metrics needs the token by default and serves the text format with the family names.
TEST_F(AdminServerTest, MetricsNeedsTokenAndListsFamilies) {
  Client c(server->port());
  EXPECT_EQ(c.send(http::verb::get, "/metrics", std::nullopt).status, 401);
  Client c2(server->port());
  Resp r = c2.send(http::verb::get, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(std::string(r.raw[http::field::content_type]).rfind("text/plain; version=0.0.4", 0),
            0u);
  for (const auto& f : Metrics::families()) {
    EXPECT_NE(r.body.find("# TYPE " + std::string(f.name)), std::string::npos) << f.name;
  }
}

// metrics_public = true: /metrics without a token; the rest still needs it.
TEST_F(AdminServerTest, MetricsPublicOption) {
  AdminRouteOptions o;
  o.metrics_public = true;
  start(o);
  Client c(server->port());
  EXPECT_EQ(c.send(http::verb::get, "/metrics", std::nullopt).status, 200);
  EXPECT_EQ(c.send(http::verb::get, "/v1/status", std::nullopt).status, 401);
}

// Flip over HTTP: a stale epoch is 409, the right one 200 with the new epoch and timings;
// repeating it is an idempotent 200; revert goes back.
TEST_F(AdminServerTest, FlipStaleEpochAndRevert) {
  Client c(server->port());
  Resp r = c.send(http::verb::post, "/v1/flip", kToken, "{\"backend\":\"target\",\"epoch\":7}");
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("\"result\":\"stale_epoch\""), std::string::npos) << r.body;
  r = c.send(http::verb::post, "/v1/flip", kToken, "{\"backend\":\"target\",\"epoch\":0}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"epoch\":1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"backend\":\"target\""), std::string::npos);
  EXPECT_NE(r.body.find("\"timings_ms\":{"), std::string::npos);
  r = c.send(http::verb::post, "/v1/flip", kToken, "{\"backend\":\"target\",\"epoch\":0}");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"changed\":false"), std::string::npos) << r.body;
  r = c.send(http::verb::post, "/v1/flip", kToken, "{\"backend\":\"nowhere\",\"epoch\":1}");
  EXPECT_EQ(r.status, 400);
  r = c.send(http::verb::post, "/v1/revert", kToken, "{\"epoch\":1}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"backend\":\"source\""), std::string::npos);
  r = c.send(http::verb::post, "/v1/readonly", kToken, "{\"enabled\":true}");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"read_only\":true"), std::string::npos);
  r = c.send(http::verb::post, "/v1/prewarm", kToken,
             "{\"backend\":\"target\",\"timeout_ms\":500}");
  EXPECT_EQ(r.status, 200) << r.body;
}

// A pause waiting on its drain does not block other admin requests; a second command gets
// 409 busy; resume interrupts the drain.
TEST_F(AdminServerTest, LongCommandDoesNotBlockOthers) {
  dp.in_flight = 1;
  auto pause = std::async(std::launch::async, [&] {
    Client c(server->port());
    return c.send(http::verb::post, "/v1/pause", kToken, "{\"drain_timeout_ms\":10000}");
  });
  ASSERT_TRUE(engine.wait_for_state(CutoverState::kPausing, 5s));
  Client c(server->port());
  Resp s = c.send(http::verb::get, "/v1/status");
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.body.find("\"state\":\"pausing\""), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("\"command\":\"pause\""), std::string::npos) << s.body;
  Resp busy = c.send(http::verb::post, "/v1/flip", kToken, "{\"backend\":\"target\",\"epoch\":0}");
  EXPECT_EQ(busy.status, 409);
  EXPECT_NE(busy.body.find("\"result\":\"busy\""), std::string::npos);
  Resp res = c.send(http::verb::post, "/v1/resume");
  EXPECT_EQ(res.status, 200) << res.body;
  Resp p = pause.get();
  EXPECT_EQ(p.status, 409);
  EXPECT_NE(p.body.find("\"result\":\"preempted\""), std::string::npos) << p.body;
}

// TLS: with cert and key configured the API speaks HTTPS (TLS 1.2+) and still checks the token.
TEST_F(AdminServerTest, TlsServesHttpsAndRefusesPlaintext) {
  auto dir = std::filesystem::temp_directory_path() /
             ("pgcutover-admin-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout " + key +
      " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl CLI unavailable";
  AdminServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.read_timeout = 500ms;
  start({}, o);

  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);  // self-signed test certificate
  beast::ssl_stream<beast::tcp_stream> tls(ioc, ctx);
  beast::get_lowest_layer(tls).expires_after(10s);
  beast::get_lowest_layer(tls).connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()));
  tls.handshake(asio::ssl::stream_base::client);
  for (auto token : {std::optional<std::string>{}, std::optional<std::string>{kToken}}) {
    http::request<http::string_body> req{http::verb::get, "/v1/status", 11};
    if (token) req.set(http::field::authorization, "Bearer " + *token);
    http::write(tls, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(tls, buf, res);
    EXPECT_EQ(res.result_int(), token ? 200u : 401u);
    if (!token) {  // 401 closes the connection: reconnect
      beast::get_lowest_layer(tls).close();
      tls = beast::ssl_stream<beast::tcp_stream>(ioc, ctx);
      beast::get_lowest_layer(tls).expires_after(10s);
      beast::get_lowest_layer(tls).connect(
          tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()));
      tls.handshake(asio::ssl::stream_base::client);
    }
  }
  // Plain HTTP to the TLS port gets no HTTP answer.
  Client plain(server->port());
  asio::write(plain.stream().socket(), asio::buffer(std::string("GET /healthz HTTP/1.1\r\n\r\n")));
  char b[256];
  boost::system::error_code ec;
  plain.stream().expires_after(5s);
  std::size_t n = plain.stream().read_some(asio::buffer(b), ec);
  EXPECT_EQ(std::string(b, n).find("HTTP/1.1 200"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A second server on a port already in use fails to start with a message, no exception.
TEST_F(AdminServerTest, BindFailureIsReported) {
  AdminServerOptions o;
  o.port = server->port();
  AdminServer other(o);
  std::string err;
  EXPECT_FALSE(other.start(err));
  EXPECT_NE(err.find("admin"), std::string::npos);
}

// Bearer token: right token passes; wrong, missing, other schemes and prefixes fail.
TEST(BearerToken, Checks) {
  BearerToken t("s3cret-token");
  EXPECT_TRUE(t.configured());
  EXPECT_TRUE(t.check("Bearer s3cret-token"));
  EXPECT_TRUE(t.check("bearer  s3cret-token "));
  EXPECT_FALSE(t.check("Bearer s3cret-toke"));
  EXPECT_FALSE(t.check("Bearer s3cret-token2"));
  EXPECT_FALSE(t.check("Bearer"));
  EXPECT_FALSE(t.check("Bearer "));
  EXPECT_FALSE(t.check(""));
  EXPECT_FALSE(t.check("Basic czNjcmV0LXRva2Vu"));
  EXPECT_FALSE(t.check("Bearers3cret-token"));
  EXPECT_FALSE(t.check("s3cret-token"));
  // An unconfigured token fails closed.
  BearerToken empty("");
  EXPECT_FALSE(empty.configured());
  EXPECT_FALSE(empty.check("Bearer "));
  EXPECT_FALSE(empty.check("Bearer x"));
}

}  // namespace
}  // namespace pgcutover::proxy
