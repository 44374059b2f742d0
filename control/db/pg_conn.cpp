#include "control/db/pg_conn.h"

#include <algorithm>
#include <cstdlib>
#include <regex>

#include "common/log.h"
#include "common/redact.h"

namespace pgcutover::control {
namespace {

// libpq keyword -> environment variable, for children (pg_dump, psql, pg_restore).
constexpr std::pair<std::string_view, std::string_view> kEnvNames[] = {
    {"host", "PGHOST"},
    {"hostaddr", "PGHOSTADDR"},
    {"port", "PGPORT"},
    {"dbname", "PGDATABASE"},
    {"user", "PGUSER"},
    {"password", "PGPASSWORD"},
    {"passfile", "PGPASSFILE"},
    {"sslmode", "PGSSLMODE"},
    {"sslrootcert", "PGSSLROOTCERT"},
    {"sslcert", "PGSSLCERT"},
    {"sslkey", "PGSSLKEY"},
    {"sslcrl", "PGSSLCRL"},
    {"connect_timeout", "PGCONNECT_TIMEOUT"},
    {"application_name", "PGAPPNAME"},
    {"options", "PGOPTIONS"},
    {"target_session_attrs", "PGTARGETSESSIONATTRS"},
    {"channel_binding", "PGCHANNELBINDING"},
};

std::string quote_conninfo_value(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

PgError error_from_result(PGconn* conn, const PGresult* res) {
  PgError e;
  auto field = [&](int code) {
    const char* v = res ? PQresultErrorField(res, code) : nullptr;
    return v ? std::string(v) : std::string();
  };
  e.message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (e.message.empty()) e.message = conn ? PQerrorMessage(conn) : "out of memory";
  while (!e.message.empty() && (e.message.back() == '\n' || e.message.back() == ' '))
    e.message.pop_back();
  e.message = redact(e.message);
  e.sqlstate = field(PG_DIAG_SQLSTATE);
  e.detail = redact(field(PG_DIAG_MESSAGE_DETAIL));
  e.hint = field(PG_DIAG_MESSAGE_HINT);
  return e;
}

PgResult wrap(PGconn* conn, PGresult* res) {
  if (!res) return PgResult::failure(error_from_result(conn, nullptr));
  auto status = PQresultStatus(res);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_OUT ||
      status == PGRES_COPY_IN) {
    return PgResult(res);
  }
  PgError e = error_from_result(conn, res);
  PQclear(res);
  return PgResult::failure(std::move(e));
}

}  // namespace

std::optional<ConnSpec> ConnSpec::parse(std::string_view conninfo, std::string& error) {
  char* err = nullptr;
  std::string text(conninfo);
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (!opts) {
    error = err ? redact(err) : "invalid connection string";
    while (!error.empty() && error.back() == '\n') error.pop_back();
    if (err) PQfreemem(err);
    return std::nullopt;
  }
  ConnSpec spec;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val && *o->val) spec.params_.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(opts);
  return spec;
}

void ConnSpec::set(std::string_view keyword, std::string value) {
  auto it = std::find_if(params_.begin(), params_.end(),
                         [&](const auto& p) { return p.first == keyword; });
  if (value.empty()) {
    if (it != params_.end()) params_.erase(it);
    return;
  }
  if (it != params_.end()) {
    it->second = std::move(value);
  } else {
    params_.emplace_back(std::string(keyword), std::move(value));
  }
}

std::string ConnSpec::get(std::string_view keyword) const {
  for (const auto& [k, v] : params_)
    if (k == keyword) return v;
  return {};
}

std::string ConnSpec::display() const {
  std::string host = get("host");
  if (host.empty()) host = get("hostaddr");
  if (host.empty()) host = "localhost";
  std::string port = get("port");
  std::string out;
  if (!get("user").empty()) out += get("user") + "@";
  out += host;
  if (!port.empty()) out += ":" + port;
  out += "/" + get("dbname");
  return out;
}

std::string ConnSpec::conninfo() const {
  std::string out;
  for (const auto& [k, v] : params_) {
    if (!out.empty()) out += ' ';
    out += k + "=" + quote_conninfo_value(v);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ConnSpec::libpq_environment() const {
  std::vector<std::pair<std::string, std::string>> env;
  for (const auto& [k, v] : params_) {
    for (const auto& [kw, name] : kEnvNames)
      if (k == kw) env.emplace_back(std::string(name), v);
  }
  return env;
}

int64_t PgResult::get_int(int row, int col, int64_t if_null) const {
  if (is_null(row, col)) return if_null;
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}

double PgResult::get_double(int row, int col, double if_null) const {
  if (is_null(row, col)) return if_null;
  return std::strtod(PQgetvalue(res_.get(), row, col), nullptr);
}

int PgResult::column(std::string_view name) const {
  std::string n(name);
  return res_ ? PQfnumber(res_.get(), n.c_str()) : -1;
}

std::optional<PgConn> PgConn::connect(const ConnSpec& spec, std::chrono::seconds timeout,
                                      std::string_view role, PgError& error) {
  ConnSpec s = spec;
  // libpq treats 1 as 2 and 0 as "forever"; a bound is the point.
  s.set("connect_timeout", std::to_string(std::max<int64_t>(2, timeout.count())));
  if (s.get("application_name").empty()) s.set("application_name", "pgcutoverctl");
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : s.params()) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConn c;
  c.conn_.reset(PQconnectdbParams(keys.data(), values.data(), 0));
  c.spec_ = spec;
  if (!c.conn_ || PQstatus(c.conn_.get()) != CONNECTION_OK) {
    std::string msg = c.conn_ ? PQerrorMessage(c.conn_.get()) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    // libpq joins multiple attempts with newlines; keep them on one line each side.
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::replace(msg.begin(), msg.end(), '\t', ' ');
    error.message =
        "cannot connect to " + std::string(role) + " (" + spec.display() + "): " + redact(msg);
    error.sqlstate.clear();
    return std::nullopt;
  }
  // Server NOTICEs ("schema already exists, skipping") are expected chatter for an idempotent
  // tool; errors still arrive as results.
  PQsetNoticeProcessor(
      c.conn_.get(), [](void*, const char*) {}, nullptr);
  return c;
}

PgResult PgConn::exec(std::string_view sql, const std::vector<Param>& params) {
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = PQexecParams(conn_.get(), text.c_str(), static_cast<int>(params.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  return wrap(conn_.get(), res);
}

PgResult PgConn::exec_script(std::string_view sql) {
  std::string text(sql);
  return wrap(conn_.get(), PQexec(conn_.get(), text.c_str()));
}

std::optional<std::string> PgConn::value(std::string_view sql, const std::vector<Param>& params) {
  PgResult r = exec(sql, params);
  if (!r || r.rows() == 0 || r.columns() == 0) return std::nullopt;
  return r.get_opt(0, 0);
}

bool PgConn::lost() {
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) return true;
  PgResult r = exec_script("SELECT 1");
  return !r && (PQstatus(conn_.get()) == CONNECTION_BAD || r.error().sqlstate.empty() ||
                r.error().sqlstate.rfind("08", 0) == 0);
}

void PgConn::cancel() {
  if (!conn_) return;
  PGcancel* c = PQgetCancel(conn_.get());
  if (!c) return;
  char buf[256];
  PQcancel(c, buf, sizeof buf);
  PQfreeCancel(c);
}

std::string PgConn::quote_ident(std::string_view ident) const {
  return control::quote_ident(ident);
}

std::string PgConn::quote_literal(std::string_view literal) const {
  char* q = PQescapeLiteral(conn_.get(), literal.data(), literal.size());
  if (!q) return "''";
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string quote_ident(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string qualified_name(std::string_view schema, std::string_view name) {
  return quote_ident(schema) + "." + quote_ident(name);
}

}  // namespace pgcutover::control
