// libpq, wrapped: RAII connections and results, errors as values, timeouts on connect.
// Every SQL call in control/ goes through here so that parameters are always bound (never
// spliced into SQL text) and connection strings are never printed with their password.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgcutover::control {

// One PostgreSQL endpoint as libpq keyword/value pairs (host, port, user, password, dbname,
// sslmode, ...). Built from a URL or a conninfo string with PQconninfoParse, so every form
// libpq accepts is accepted here, and so the password can be kept out of displays and
// out of child processes' command lines.
class ConnSpec {
 public:
  ConnSpec() = default;
  // Parses "postgres://..." or "host=... dbname=..."; nullopt and `error` set when invalid.
  static std::optional<ConnSpec> parse(std::string_view conninfo, std::string& error);

  // Sets (or with an empty value, removes) one keyword.
  void set(std::string_view keyword, std::string value);
  std::string get(std::string_view keyword) const;
  const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }

  // user@host:port/dbname: what humans see. Never contains the password.
  std::string display() const;
  // Full conninfo string with quoting (contains the password): only for CREATE SUBSCRIPTION.
  std::string conninfo() const;
  // PGHOST=..., PGPASSWORD=... for pg_dump/psql children: the password travels in the
  // environment, not argv, because argv is world-readable in /proc.
  std::vector<std::pair<std::string, std::string>> libpq_environment() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

struct PgError {
  std::string message;   // primary message (libpq or server), password redacted
  std::string sqlstate;  // empty for client-side errors
  std::string detail;
  std::string hint;
};

// A query result or an error, never both.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* res) : res_(res, &PQclear) {}
  static PgResult failure(PgError error) {
    PgResult r;
    r.error_ = std::move(error);
    return r;
  }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const PgError& error() const { return *error_; }

  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string get(int row, int col) const {
    return std::string(PQgetvalue(res_.get(), row, col), PQgetlength(res_.get(), row, col));
  }
  std::optional<std::string> get_opt(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return get(row, col);
  }
  int64_t get_int(int row, int col, int64_t if_null = 0) const;
  double get_double(int row, int col, double if_null = 0) const;
  bool get_bool(int row, int col) const { return !is_null(row, col) && get(row, col) == "t"; }
  int column(std::string_view name) const;

 private:
  std::shared_ptr<PGresult> res_;
  std::optional<PgError> error_;
};

using Param = std::optional<std::string>;  // nullopt binds SQL NULL

class PgConn {
 public:
  PgConn() = default;
  PgConn(PgConn&&) noexcept = default;
  PgConn& operator=(PgConn&&) noexcept = default;

  // Connects within `timeout` (libpq connect_timeout, whole seconds, at least 2).
  // `role` ("source", "target") only labels the error message.
  static std::optional<PgConn> connect(const ConnSpec& spec, std::chrono::seconds timeout,
                                       std::string_view role, PgError& error);

  bool connected() const { return conn_ != nullptr; }
  PGconn* raw() const { return conn_.get(); }
  const ConnSpec& spec() const { return spec_; }

  // Parameters are sent as text with server-inferred types; add casts in the SQL ($1::int).
  PgResult exec(std::string_view sql, const std::vector<Param>& params = {});
  // Several statements in one simple-protocol call (DDL scripts). No parameters.
  PgResult exec_script(std::string_view sql);
  // First column of the first row, or nullopt on error / no row / NULL.
  std::optional<std::string> value(std::string_view sql, const std::vector<Param>& params = {});

  int server_version() const { return PQserverVersion(conn_.get()); }
  bool ssl_in_use() const { return PQsslInUse(conn_.get()) != 0; }
  int backend_pid() const { return PQbackendPID(conn_.get()); }
  // Asks the server to cancel the running query (another thread may call this).
  void cancel();
  // True when the connection to the server is gone. libpq does not always mark a connection
  // broken on the call that met the closed socket (seen over TLS after an immediate shutdown),
  // so a connection still marked good is asked one trivial query; for failure paths only.
  bool lost();

  std::string quote_ident(std::string_view ident) const;
  std::string quote_literal(std::string_view literal) const;

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_{nullptr, &PQfinish};
  ConnSpec spec_;
};

// "schema"."table" quoted for SQL, without a connection (same rules as quote_ident).
std::string quote_ident(std::string_view ident);
std::string qualified_name(std::string_view schema, std::string_view name);

}  // namespace pgcutover::control
