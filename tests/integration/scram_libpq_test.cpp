// The codec's authentication against the real thing, both ways round:
//  (a) ScramClient and md5_response logging in to a real PostgreSQL 15 over a plain TCP socket,
//      with the startup/SASL messages built and decoded by protocol/ (what the proxy does on
//      its server side);
//  (b) libpq logging in to ScramServer / md5_verify on a loopback socket (what the proxy does
//      on its client side): right password, wrong password, unknown user.
// Every socket wait has a deadline; nothing sleeps to synchronise.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/auth.h"
#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"
#include "tests/lib/pg_cluster.h"

namespace pgcutover::protocol {
namespace {

using testing::PgCluster;
using testing::PgConn;
using Clock = std::chrono::steady_clock;

constexpr auto kIoTimeout = std::chrono::seconds(20);

// One whole typed message, copied out of the read buffer.
struct Message {
  char type = 0;
  std::string body;
  Bytes bytes() const { return as_bytes(body); }
};

// A connected TCP socket whose every read and write must finish before one deadline.
class Conn {
 public:
  explicit Conn(int fd) : fd_(fd), deadline_(Clock::now() + kIoTimeout) {}
  Conn(Conn&& o) noexcept : fd_(std::exchange(o.fd_, -1)), deadline_(o.deadline_) {}
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  static std::optional<Conn> connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    return Conn(fd);
  }

  bool send(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      if (!wait(POLLOUT)) return false;
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // The next typed message, or nullopt on EOF, timeout or a framing error.
  std::optional<Message> read_message() {
    for (;;) {
      const FrameResult r = decode_frame(as_bytes(buf_), Limits{});
      if (r.status == DecodeStatus::kError) return std::nullopt;
      if (r.status == DecodeStatus::kMessage) {
        Message m{r.frame.type, std::string(as_chars(r.frame.body))};
        buf_.erase(0, r.frame.size);
        return m;
      }
      if (!fill()) return std::nullopt;
    }
  }

  std::optional<StartupPacket> read_startup() {
    for (;;) {
      const StartupResult r = decode_startup(as_bytes(buf_), Limits{});
      if (r.status == DecodeStatus::kError) return std::nullopt;
      if (r.status == DecodeStatus::kMessage) {
        buf_.erase(0, r.size);
        return r.packet;
      }
      if (!fill()) return std::nullopt;
    }
  }

 private:
  bool wait(short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
  }
  bool fill() {
    if (!wait(POLLIN)) return false;
    char tmp[4096];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  Clock::time_point deadline_;
  std::string buf_;
};

// ---------------------------------------------------------------------------------------------
// (a) our client side against a real PostgreSQL 15
// ---------------------------------------------------------------------------------------------

// A plain harness cluster, switched from trust to <method> for TCP, and the switch confirmed
// by a wrong password being refused (pg_reload_conf() only signals the postmaster).
std::unique_ptr<PgCluster> cluster_with_password_auth(const std::string& method) {
  auto cluster = PgCluster::start(testing::Shape::kPlain, "scram");
  const std::string hba = cluster->record("data_dir") + "/pg_hba.conf";
  std::stringstream text;
  {
    std::ifstream in(hba);
    text << in.rdbuf();
  }
  std::string conf = text.str();
  for (std::size_t at; (at = conf.find("127.0.0.1/32   trust")) != std::string::npos;) {
    conf.replace(at, 20, "127.0.0.1/32   " + method);
  }
  {
    std::ofstream out(hba, std::ios::trunc);  // same file, same owner
    out << conf;
  }
  cluster->query("SELECT pg_reload_conf()");
  const bool enforced = testing::eventually(
      [&] { return !PgConn::connect(cluster->app_conninfo("password=wrong")).ok(); },
      std::chrono::seconds(10));
  EXPECT_TRUE(enforced) << method << " never replaced trust in " << hba;
  return cluster;
}

struct LoginResult {
  bool authenticated = false;  // AuthenticationOk seen
  bool ready = false;          // ReadyForQuery 'I' seen
  std::string sqlstate;        // of an ErrorResponse, if one came
  std::string step_error;      // our side refused something
  std::string current_user;
  bool server_proved_itself = false;  // SCRAM: server-final signature checked
  bool used_md5 = false;
};

// Startup -> authentication -> ReadyForQuery -> SELECT current_user, all through protocol/.
LoginResult login(int port, const std::string& user, const std::string& password) {
  LoginResult res;
  auto conn = Conn::connect_loopback(port);
  if (!conn) {
    res.step_error = "connect failed";
    return res;
  }
  std::string out;
  append_startup_message(out,
                         {{"user", user}, {"database", "app"}, {"application_name", "scram_it"}});
  if (!conn->send(out)) return res;
  ScramClient scram(password);
  for (;;) {
    auto m = conn->read_message();
    if (!m) {
      res.step_error = "connection ended";
      return res;
    }
    if (m->type == backend::kErrorResponse) {
      const auto e = parse_error_notice(m->bytes());
      res.sqlstate = e ? std::string(e->sqlstate) : "malformed";
      return res;
    }
    if (m->type == backend::kReadyForQuery) {
      const auto z = parse_ready_for_query(m->bytes());
      res.ready = z && z->status == 'I';
      break;
    }
    if (m->type != backend::kAuthentication) continue;  // ParameterStatus, BackendKeyData
    const auto a = parse_authentication(m->bytes());
    if (!a) {
      res.step_error = "malformed Authentication";
      return res;
    }
    out.clear();
    switch (a->code) {
      case AuthCode::kOk:
        res.authenticated = true;
        continue;
      case AuthCode::kSasl: {
        const auto mechs = parse_sasl_mechanisms(a->data);
        if (!mechs || std::find(mechs->begin(), mechs->end(), "SCRAM-SHA-256") == mechs->end()) {
          res.step_error = "no SCRAM-SHA-256 offered";
          return res;
        }
        append_sasl_initial_response(out, "SCRAM-SHA-256", scram.client_first());
        break;
      }
      case AuthCode::kSaslContinue: {
        const ScramStep s = scram.handle_server_first(as_chars(a->data));
        if (!s.ok) {
          res.step_error = s.error;
          return res;
        }
        append_sasl_response(out, s.message);
        break;
      }
      case AuthCode::kSaslFinal: {
        const ScramStep s = scram.handle_server_final(as_chars(a->data));
        if (!s.ok) {
          res.step_error = s.error;
          return res;
        }
        res.server_proved_itself = true;
        continue;
      }
      case AuthCode::kMd5Password:
        res.used_md5 = true;
        append_password_message(out, md5_response(user, password, a->data.data()));
        break;
      default:
        res.step_error = "unexpected authentication request";
        return res;
    }
    if (!conn->send(out)) return res;
  }
  // Prove the session works: one simple query, decoded with the same codec.
  out.clear();
  append_query(out, "SELECT current_user");
  if (!conn->send(out)) return res;
  for (auto m = conn->read_message(); m && m->type != backend::kReadyForQuery;
       m = conn->read_message()) {
    if (m->type == backend::kDataRow && m->body.size() > 6) {
      res.current_user = m->body.substr(6);  // int16 count, int32 length, value
    }
  }
  out.clear();
  append_terminate(out);
  conn->send(out);
  return res;
}

// ScramClient completes PostgreSQL's SCRAM exchange (including checking the server's
// signature) and the session answers a query.
TEST(scram_libpq, ScramClientLogsInToPostgres) {
  auto pg = cluster_with_password_auth("scram-sha-256");
  const LoginResult r = login(pg->port(), pg->app_user(), pg->app_password());
  EXPECT_EQ(r.step_error, "");
  EXPECT_EQ(r.sqlstate, "");
  EXPECT_TRUE(r.authenticated);
  EXPECT_TRUE(r.server_proved_itself);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.current_user, pg->app_user());

  // The verifier PostgreSQL stored parses, and checks the same password.
  const auto v = parse_scram_verifier(
      pg->query("SELECT rolpassword FROM pg_authid WHERE rolname = '" + pg->app_user() + "'"));
  ASSERT_TRUE(v);
  EXPECT_TRUE(scram_verify_password(pg->app_password(), *v));
}

// A wrong password: PostgreSQL answers the client-final with 28P01, and we never saw
// AuthenticationOk.
TEST(scram_libpq, ScramClientWrongPasswordGets28P01) {
  auto pg = cluster_with_password_auth("scram-sha-256");
  const LoginResult r = login(pg->port(), pg->app_user(), pg->app_password() + "x");
  EXPECT_FALSE(r.authenticated);
  EXPECT_EQ(r.sqlstate, "28P01");
}

// md5_response against PostgreSQL's md5 method with an md5-stored password.
TEST(scram_libpq, Md5ResponseLogsInToPostgres) {
  auto pg = cluster_with_password_auth("md5");
  pg->query("SET password_encryption = 'md5'; ALTER ROLE " + pg->app_user() + " PASSWORD 'md5-pw'");
  EXPECT_EQ(pg->query("SELECT rolpassword FROM pg_authid WHERE rolname = '" + pg->app_user() + "'"),
            md5_password_hash(pg->app_user(), "md5-pw"));
  const LoginResult ok = login(pg->port(), pg->app_user(), "md5-pw");
  EXPECT_TRUE(ok.authenticated) << ok.step_error << ok.sqlstate;
  EXPECT_TRUE(ok.used_md5);
  EXPECT_TRUE(ok.ready);
  const LoginResult bad = login(pg->port(), pg->app_user(), "md5-pw2");
  EXPECT_FALSE(bad.authenticated);
  EXPECT_EQ(bad.sqlstate, "28P01");
}

// ---------------------------------------------------------------------------------------------
// (b) libpq against our server side
// ---------------------------------------------------------------------------------------------

class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(a.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  std::optional<Conn> accept() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kIoTimeout).count())) != 1) {
      return std::nullopt;
    }
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return std::nullopt;
    return Conn(fd);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

enum class Method { kScram, kMd5 };

// What the fake server saw; read by the test after join().
struct ServerSide {
  std::string user;
  bool authenticated = false;
  bool terminated = false;  // libpq sent Terminate after a successful login
  std::string error;
};

// One connection, the server half of the handshake, as the proxy will do it: known users
// have a verifier (or an md5 hash), unknown ones a mock verifier and the same failure.
void serve_one(Listener& l, Method method, const std::string& known_user,
               const std::string& password, ServerSide& side) {
  auto conn = l.accept();
  if (!conn) {
    side.error = "no connection";
    return;
  }
  std::optional<StartupPacket> sp;
  for (;;) {
    sp = conn->read_startup();
    if (!sp) {
      side.error = "bad startup";
      return;
    }
    if (sp->kind == StartupKind::kStartup) break;
    if (!conn->send("N")) return;  // SSLRequest/GSSENCRequest: not on this socket
  }
  side.user = std::string(startup_param(*sp, "user"));
  const bool known = side.user == known_user;
  std::string out;
  auto refuse = [&](const char* why) {
    side.error = why;
    out.clear();
    ErrorSpec e;
    e.severity = "FATAL";
    e.sqlstate = "28P01";
    e.message = "password authentication failed";
    append_error_response(out, e);
    conn->send(out);
  };

  if (method == Method::kScram) {
    const ScramVerifier v = known ? make_scram_verifier(password, 4096)
                                  : mock_scram_verifier(side.user, "integration-test-secret");
    ScramServer server(v);
    append_auth_sasl(out, {"SCRAM-SHA-256"});
    if (!conn->send(out)) return;
    auto m = conn->read_message();
    const auto init = m && m->type == frontend::kPassword ? parse_sasl_initial_response(m->bytes())
                                                          : std::nullopt;
    if (!init || init->mechanism != "SCRAM-SHA-256") return refuse("no SASLInitialResponse");
    const ScramStep first = server.handle_client_first(init->data);
    if (!first.ok) return refuse("client-first refused");
    out.clear();
    append_auth_sasl_continue(out, first.message);
    if (!conn->send(out)) return;
    m = conn->read_message();
    if (!m || m->type != frontend::kPassword) return refuse("no SASLResponse");
    const ScramStep final_step = server.handle_client_final(m->body);
    if (!final_step.ok) return refuse("proof refused");
    out.clear();
    append_auth_sasl_final(out, final_step.message);
  } else {
    std::uint8_t salt[4];
    random_bytes(salt, sizeof salt);
    append_auth_md5(out, salt);
    if (!conn->send(out)) return;
    auto m = conn->read_message();
    const auto pw = m && m->type == frontend::kPassword ? parse_password(m->bytes()) : std::nullopt;
    const std::string stored = md5_password_hash(known_user, password);
    if (!pw || !known || !md5_verify(side.user, stored, salt, *pw)) {
      return refuse("md5 response refused");
    }
    out.clear();
  }
  side.authenticated = true;
  append_auth_ok(out);
  append_parameter_status(out, "server_version", "15.0");
  append_parameter_status(out, "client_encoding", "UTF8");
  append_parameter_status(out, "standard_conforming_strings", "on");
  append_backend_key_data(out, 4242, 2424);
  append_ready_for_query(out, 'I');
  if (!conn->send(out)) return;
  const auto bye = conn->read_message();
  side.terminated = bye && bye->type == frontend::kTerminate;
}

struct ClientSide {
  bool ok = false;
  std::string error;
};

ClientSide libpq_login(Method method, const std::string& user, const std::string& password,
                       ServerSide& side) {
  Listener l;
  std::thread server([&] { serve_one(l, method, "alice", "correct horse", side); });
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(l.port()) +
                               " dbname=app sslmode=disable gssencmode=disable"
                               " connect_timeout=20 user=" +
                               testing::conninfo_quote(user) +
                               " password=" + testing::conninfo_quote(password);
  PGconn* c = PQconnectdb(conninfo.c_str());
  ClientSide res;
  res.ok = PQstatus(c) == CONNECTION_OK;
  res.error = PQerrorMessage(c);
  PQfinish(c);  // sends Terminate when connected
  server.join();
  return res;
}

// libpq completes SCRAM against ScramServer: it accepts our proof check and our
// ServerSignature (libpq verifies it and would fail the login otherwise).
TEST(scram_libpq, LibpqLogsInToScramServer) {
  ServerSide side;
  const ClientSide c = libpq_login(Method::kScram, "alice", "correct horse", side);
  EXPECT_TRUE(c.ok) << c.error << " / server: " << side.error;
  EXPECT_TRUE(side.authenticated);
  EXPECT_TRUE(side.terminated);
  EXPECT_EQ(side.user, "alice");
}

TEST(scram_libpq, LibpqWrongPasswordIsRefusedByScramServer) {
  ServerSide side;
  const ClientSide c = libpq_login(Method::kScram, "alice", "correct horse battery", side);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.error.find("password authentication failed"), std::string::npos) << c.error;
  EXPECT_FALSE(side.authenticated);
  EXPECT_EQ(side.error, "proof refused");
}

// An unknown user goes through the whole exchange with a mock verifier and fails at the same
// step with the same message as a wrong password: no user-existence oracle.
TEST(scram_libpq, LibpqUnknownUserLooksLikeWrongPassword) {
  ServerSide side;
  const ClientSide c = libpq_login(Method::kScram, "mallory", "correct horse", side);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.error.find("password authentication failed"), std::string::npos) << c.error;
  EXPECT_EQ(side.error, "proof refused");
}

TEST(scram_libpq, LibpqLogsInWithMd5) {
  ServerSide side;
  const ClientSide c = libpq_login(Method::kMd5, "alice", "correct horse", side);
  EXPECT_TRUE(c.ok) << c.error << " / server: " << side.error;
  EXPECT_TRUE(side.terminated);
}

TEST(scram_libpq, LibpqWrongPasswordIsRefusedWithMd5) {
  ServerSide side;
  const ClientSide c = libpq_login(Method::kMd5, "alice", "wrong", side);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.error.find("password authentication failed"), std::string::npos) << c.error;
  EXPECT_FALSE(side.authenticated);
}

}  // namespace
}  // namespace pgcutover::protocol
