// Real PostgreSQL servers for integration tests: a Heroku-shaped source, an RDS-shaped target,
// a plain one, and streaming replicas. The set-up itself lives in tests/lib/pgcluster.sh (shell
// tests, benchmarks and the demo use it too); PgCluster runs that script and parses the
// key=value record it prints, so the rules for each shape are written once.
//
//   auto source = PgCluster::start(Shape::kHeroku, "source");
//   PgConn app = PgConn::connect(source->app_conninfo());   // app role over TLS
//   source->query("SELECT rolsuper FROM pg_roles ...");      // superuser, test set-up only
//
// Every cluster is stopped and its directory deleted by the destructor; if the test process
// dies first, a watchdog started by the script does it.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgcutover::testing {

// A fresh directory under /tmp, deleted with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "pgcutover");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A loopback port that was free when asked. Another process may take it before the caller
// binds it: callers that can, retry (pgcluster.sh does for PostgreSQL).
int free_port();

// True if something accepts TCP connections on 127.0.0.1:<port> right now.
bool port_is_open(int port);

// True if <pid> exists and is not a zombie.
bool process_is_running(pid_t pid);

// Polls <condition> every <interval> until it is true (returns true) or <timeout> has passed
// (returns false). The one way tests wait: with a deadline, never a bare sleep.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(50));

// A test CA and a server certificate for localhost/127.0.0.1 signed by it, written into <dir>
// (for the proxy's own listener, or as a "wrong CA" in tests). Made by pgcluster.sh tls.
struct TlsFiles {
  std::string ca_file, cert_file, key_file;
};
TlsFiles make_tls(const std::string& dir, std::string_view label = "pgcutover");

// Quotes a value for a libpq keyword/value connection string.
std::string conninfo_quote(std::string_view value);
// Quotes a value as an SQL string literal (standard_conforming_strings on, the default).
std::string sql_literal(std::string_view value);

// One libpq connection. connect() does not throw: check ok() and error(), since tests often
// expect a connection to fail and want the server's message.
class PgConn {
 public:
  using Row = std::vector<std::optional<std::string>>;  // nullopt is SQL NULL

  static PgConn connect(const std::string& conninfo);
  PgConn(PgConn&& other) noexcept;
  PgConn& operator=(PgConn&& other) noexcept;
  ~PgConn();

  bool ok() const;
  // libpq's message for the failed connection or the last failed command.
  const std::string& error() const { return error_; }
  // Runs one or more statements; returns the rows of the last result. Throws
  // std::runtime_error with the server's message when a command fails.
  std::vector<Row> exec(const std::string& sql);
  // First column of the first row ("" for no row or NULL): for one-value queries.
  std::string value(const std::string& sql);
  PGconn* raw() const { return conn_; }

 private:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  PGconn* conn_ = nullptr;
  std::string error_;
};

enum class Shape {
  kHeroku,  // TLS only, app role without superuser or REPLICATION, citext/hstore/pg_stat_statements
  kRds,    // TLS only (verify-full with ca_file()), wal_level=logical, CREATEDB/CREATEROLE app role
  kPlain,  // no TLS, trust
};

// Set fields by name (`ClusterOptions o; o.logical = true;`): GCC's -Wextra warns about
// designated initializers that leave fields out.
struct ClusterOptions {
  bool logical = false;  // heroku: wal_level=logical and REPLICATION for the app role
  bool durable = false;  // fsync on (off by default for speed)
  int max_connections = 200;
  std::string app_user = "app";
  std::vector<std::string> settings;  // extra server settings, "name=value"
};

class PgCluster {
 public:
  // Starts a cluster (initdb, TLS, roles, database `app`); throws std::runtime_error with the
  // script's exit status if it fails (the script prints the server log's tail to stderr).
  // <name> names the directory and the CA (letters, digits, _).
  static std::unique_ptr<PgCluster> start(Shape shape, const std::string& name = "pg",
                                          const ClusterOptions& options = {});
  // Streaming replica of this cluster: same shape, roles, passwords and CA; returns once the
  // replica streams.
  std::unique_ptr<PgCluster> start_replica(const std::string& name = "replica") const;
  // Promotes this replica and returns once it accepts writes.
  void promote();

  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Stops the server immediately and deletes the directory. Idempotent.
  void stop();

  const std::string& name() const { return record("name"); }
  Shape shape() const { return shape_; }
  const std::string& host() const { return record("host"); }  // always 127.0.0.1
  int port() const;
  const std::string& dir() const { return record("dir"); }
  const std::string& log_file() const { return record("log_file"); }
  const std::string& ca_file() const { return record("ca_file"); }  // "" for kPlain
  const std::string& app_user() const { return record("app_user"); }
  const std::string& app_password() const { return record("app_password"); }
  // postgres:// URL for the app role, as an application would get it: sslmode=require for
  // kHeroku, verify-full with the CA for kRds, disable for kPlain.
  const std::string& app_url() const { return record("url"); }
  // The same as keyword/value conninfo; <extra> is appended, and libpq lets a later keyword
  // win, so app_conninfo("sslmode=disable") asks for exactly that.
  std::string app_conninfo(std::string_view extra = "") const;
  // Superuser over the cluster's unix socket: for the test's own set-up and checks only.
  std::string admin_conninfo(std::string_view dbname = "app") const;
  // Runs <sql> as the superuser in database `app`; returns the rows as psql -At prints them
  // (columns joined by '|', rows by '\n'). Throws std::runtime_error on failure.
  std::string query(const std::string& sql) const;
  // Any value of the record pgcluster.sh printed (e.g. "data_dir", "socket_dir", "pid").
  const std::string& record(const std::string& key) const;

 private:
  PgCluster(Shape shape, std::map<std::string, std::string> record)
      : shape_(shape), record_(std::move(record)) {}
  static std::unique_ptr<PgCluster> from_script(const std::vector<std::string>& args);

  Shape shape_;
  std::map<std::string, std::string> record_;
  bool stopped_ = false;
};

}  // namespace pgcutover::testing
