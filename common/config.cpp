#include "common/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "common/fleet_contract.h"
#include "common/password_source.h"

namespace pgcutover {
namespace {

[[noreturn]] void fail(const std::string& path, std::string_view key, std::string_view problem) {
  std::string msg = path;
  msg += ": ";
  if (!key.empty()) {
    msg += key;
    msg += ": ";
  }
  msg += problem;
  throw ConfigError(msg);
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date/time";
  }
}

// One TOML table being read: remembers which keys were consumed so that finish() can reject
// the rest (a typo such as `pool_mod` must not silently leave the default in force).
class Section {
 public:
  Section(const toml::table* table, std::string prefix, const std::string& path)
      : table_(table), prefix_(std::move(prefix)), path_(path) {}

  std::string key(std::string_view k) const {
    return prefix_.empty() ? std::string(k) : prefix_ + "." + std::string(k);
  }
  const toml::node* get(std::string_view k) {
    seen_.insert(std::string(k));
    return table_ ? table_->get(k) : nullptr;
  }
  bool has(std::string_view k) const { return table_ && table_->contains(k); }

  std::string string(std::string_view k, std::string def) {
    const toml::node* n = get(k);
    if (!n) return def;
    if (!n->is_string())
      fail(path_, key(k), std::string("expected a string, got ") + std::string(type_name(*n)));
    try {
      return substitute_env(n->as_string()->get());
    } catch (const ConfigError& e) {
      fail(path_, key(k), e.what());
    }
  }
  std::string required_string(std::string_view k) {
    if (!has(k)) fail(path_, key(k), "missing required key");
    return string(k, {});
  }
  std::int64_t integer(std::string_view k, std::int64_t def, std::int64_t min, std::int64_t max) {
    const toml::node* n = get(k);
    if (!n) return def;
    if (!n->is_integer())
      fail(path_, key(k), std::string("expected an integer, got ") + std::string(type_name(*n)));
    std::int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      fail(path_, key(k),
           "value " + std::to_string(v) + " out of range [" + std::to_string(min) + ", " +
               std::to_string(max) + "]");
    }
    return v;
  }
  bool boolean(std::string_view k, bool def) {
    const toml::node* n = get(k);
    if (!n) return def;
    if (!n->is_boolean())
      fail(path_, key(k), std::string("expected a boolean, got ") + std::string(type_name(*n)));
    return n->as_boolean()->get();
  }
  // Seconds, integer or fractional, not negative.
  Duration duration(std::string_view k, Duration def) {
    const toml::node* n = get(k);
    if (!n) return def;
    double seconds = 0;
    if (n->is_integer()) {
      seconds = static_cast<double>(n->as_integer()->get());
    } else if (n->is_floating_point()) {
      seconds = n->as_floating_point()->get();
    } else {
      fail(path_, key(k),
           std::string("expected a number of seconds, got ") + std::string(type_name(*n)));
    }
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 365.0 * 24 * 3600) {
      fail(path_, key(k), "expected a number of seconds between 0 and one year");
    }
    return Duration(static_cast<std::int64_t>(std::llround(seconds * 1000)));
  }
  template <typename E>
  E enumeration(std::string_view k, E def,
                std::initializer_list<std::pair<std::string_view, E>> values) {
    const toml::node* n = get(k);
    if (!n) return def;
    std::string text = string(k, {});
    for (const auto& [name, value] : values) {
      if (text == name) return value;
    }
    std::string allowed;
    for (const auto& [name, value] : values) {
      if (!allowed.empty()) allowed += ", ";
      allowed += name;
    }
    fail(path_, key(k), "unknown value \"" + text + "\" (expected one of: " + allowed + ")");
  }
  const toml::table* table(std::string_view k) {
    const toml::node* n = get(k);
    if (!n) return nullptr;
    if (!n->is_table())
      fail(path_, key(k), std::string("expected a table, got ") + std::string(type_name(*n)));
    return n->as_table();
  }
  // "; did you mean pool_mode?" when a key read from this table is a typo away (edit distance
  // at most 2, and less than half the key's length), else "".
  std::string nearest_known(std::string_view typo) const {
    std::string best;
    std::size_t best_d = 3;
    for (const auto& known : seen_) {
      std::size_t d = edit_distance(typo, known);
      if (d < best_d && d * 2 < known.size()) {
        best_d = d;
        best = known;
      }
    }
    return best.empty() ? "" : "; did you mean " + best + "?";
  }
  static std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = above;
      }
    }
    return row[b.size()];
  }
  void finish() const {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
      if (!seen_.count(std::string(k.str())))
        fail(path_, key(k.str()), "unknown key" + nearest_known(k.str()));
    }
  }

 private:
  const toml::table* table_;
  std::string prefix_;
  const std::string& path_;
  std::set<std::string, std::less<>> seen_;
};

bool is_hex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Shape check only (SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>); the protocol layer decodes
// it. Catches a plaintext password pasted into scram_verifier.
bool looks_like_scram_verifier(std::string_view v) {
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (v.substr(0, kPrefix.size()) != kPrefix) return false;
  v.remove_prefix(kPrefix.size());
  auto colon = v.find(':');
  auto dollar = v.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar)
    return false;
  if (colon == 0) return false;
  for (char c : v.substr(0, colon)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  auto rest = v.substr(dollar + 1);
  auto colon2 = rest.find(':');
  return colon2 != std::string_view::npos && colon2 > 0 && colon2 + 1 < rest.size();
}

bool looks_like_md5_hash(std::string_view v) {
  return v.size() == 35 && v.substr(0, 3) == "md5" && is_hex(v.substr(3));
}

// A secret that may be plaintext, a SCRAM verifier or an md5 hash (PgBouncer's rules).
void assign_secret(User& u, std::string secret) {
  if (secret.rfind("SCRAM-SHA-256$", 0) == 0) {
    u.scram_verifier = std::move(secret);
  } else if (looks_like_md5_hash(secret)) {
    u.md5_hash = std::move(secret);
  } else {
    u.password = std::move(secret);
  }
}

// PgBouncer userlist.txt: one `"user" "secret"` per line; "" inside quotes is a literal quote.
void load_auth_file(const std::string& config_path, const std::string& file,
                    std::map<std::string, User, std::less<>>& users) {
  std::ifstream in(file);
  if (!in) fail(config_path, "auth.auth_file", "cannot open \"" + file + "\"");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::vector<std::string> fields;
    std::size_t i = 0;
    auto where = [&] { return file + " line " + std::to_string(lineno); };
    while (i < line.size()) {
      char c = line[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      if (c == ';' || c == '#') break;  // comment
      if (c != '"') fail(config_path, "auth.auth_file", where() + ": expected a quoted field");
      std::string field;
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += line[i++];
      }
      if (!closed) fail(config_path, "auth.auth_file", where() + ": unterminated quoted field");
      fields.push_back(std::move(field));
    }
    if (fields.empty()) continue;
    if (fields.size() < 2 || fields[0].empty()) {
      fail(config_path, "auth.auth_file", where() + ": expected \"user\" \"secret\"");
    }
    User u;
    u.name = fields[0];
    assign_secret(u, std::move(fields[1]));
    if (!u.scram_verifier.empty() && !looks_like_scram_verifier(u.scram_verifier)) {
      fail(config_path, "auth.auth_file", where() + ": malformed SCRAM verifier");
    }
    // [users.*] in the config file wins over the auth file.
    users.emplace(u.name, std::move(u));
  }
}

// `text` with every occurrence of `secret` replaced by "***", for quoting a value in an error.
std::string without_secret(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

std::string dirname_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// password_file / password_command: the password kept out of the URL, read now (so that
// --check and pgcutoverctl see it too) and again by the proxy after a refused login.
void read_password_source_keys(Section& s, const std::string& key, const std::string& path,
                               Backend& b) {
  bool has_file = s.has("password_file"), has_command = s.has("password_command");
  if (has_file && has_command)
    fail(path, key, "password_file and password_command are exclusive: keep one");
  PasswordSource& src = b.password_source;
  src.timeout = s.duration("password_command_timeout", src.timeout);
  if (src.timeout.count() == 0) fail(path, key + ".password_command_timeout", "must be above 0");
  if (has_file) {
    src.kind = PasswordSource::Kind::kFile;
    src.file = s.string("password_file", {});
    if (src.file.empty()) fail(path, key + ".password_file", "must not be empty");
    if (src.file.front() != '/') src.file = dirname_of(path) + "/" + src.file;
  } else if (has_command) {
    src.kind = PasswordSource::Kind::kCommand;
    src.command = s.string("password_command", {});
    if (src.command.empty()) fail(path, key + ".password_command", "must not be empty");
  } else {
    return;
  }
  SecretRead r = read_password_source(src);
  if (!r.ok) fail(path, key + (has_file ? ".password_file" : ".password_command"), r.error);
  // The source wins over a password in the URL (which may be an old one left in DATABASE_URL).
  b.url.password = std::move(r.secret);
}

// [routes.<name>]: more client-side database names, each with its own backend per side.
void read_routes(const toml::table& routes, const std::string& path, Config& c) {
  std::map<std::string, std::string, std::less<>> claimed;  // database -> route
  for (const auto& [name, node] : routes) {
    std::string key = "routes." + std::string(name.str());
    if (!node.is_table())
      fail(path, key, std::string("expected a table, got ") + std::string(type_name(node)));
    Section s(node.as_table(), key, path);
    Route r;
    r.name = std::string(name.str());
    r.database = s.string("database", r.name);
    if (r.database.empty()) fail(path, key + ".database", "must not be empty");
    if (auto [it, fresh] = claimed.emplace(r.database, r.name); !fresh)
      fail(path, key + ".database",
           "\"" + r.database + "\" is already served by routes." + it->second);
    r.read_only = s.boolean("read_only", false);
    const toml::table* sides = s.table("backends");
    if (!sides)
      fail(path, key + ".backends",
           "missing required key (e.g. backends = { source = \"source_follower\", target = "
           "\"target_replica\" })");
    for (const auto& [side, value] : *sides) {
      std::string skey = key + ".backends." + std::string(side.str());
      if (!c.backend(side.str()))
        fail(path, skey,
             "no [backends." + std::string(side.str()) +
                 "] table (the keys are the "
                 "sides a flip names, e.g. source and target)");
      // One backend name, or an array of readers balanced by least outstanding queries.
      std::vector<std::string> names;
      if (value.is_string()) {
        names.push_back(value.as_string()->get());
      } else if (value.is_array() && !value.as_array()->empty()) {
        for (const toml::node& item : *value.as_array()) {
          if (!item.is_string())
            fail(path, skey,
                 std::string("expected backend names, got ") + std::string(type_name(item)));
          names.push_back(item.as_string()->get());
        }
      } else {
        fail(path, skey,
             std::string("expected a backend name or a non-empty array of them, got ") +
                 std::string(type_name(value)));
      }
      for (const auto& backend : names) {
        if (!c.backend(backend)) fail(path, skey, "no [backends." + backend + "] table");
      }
      r.backends.emplace(std::string(side.str()), std::move(names));
    }
    // The route must be servable now; a flip to a side it lacks is refused by the proxy.
    if (!r.backends.count(c.cutover.initial_backend))
      fail(path, key + ".backends",
           "no backend for the initial side \"" + c.cutover.initial_backend + "\"");
    s.finish();
    c.routes.emplace(r.name, std::move(r));
  }
}

// [proxy] and [proxy.tls]: the listener, pooling, timeouts and client TLS.
void read_proxy(Section& top, const std::string& path, Config& c) {
  Section s(top.table("proxy"), "proxy", path);
  auto& p = c.proxy;
  p.listen_addr = s.string("listen_addr", p.listen_addr);
  p.listen_port = static_cast<std::uint16_t>(s.integer("listen_port", p.listen_port, 0, 65535));
  p.unix_socket_dir = s.string("unix_socket_dir", p.unix_socket_dir);
  p.threads = static_cast<int>(s.integer("threads", p.threads, 0, 256));
  p.pool_mode =
      s.enumeration("pool_mode", p.pool_mode,
                    {{"session", PoolMode::kSession}, {"transaction", PoolMode::kTransaction}});
  p.default_pool_size =
      static_cast<int>(s.integer("default_pool_size", p.default_pool_size, 1, 100000));
  p.min_pool_size = static_cast<int>(s.integer("min_pool_size", p.min_pool_size, 0, 100000));
  if (p.min_pool_size > p.default_pool_size) {
    fail(path, "proxy.min_pool_size", "must not exceed proxy.default_pool_size");
  }
  p.max_client_conn = static_cast<int>(s.integer("max_client_conn", p.max_client_conn, 1, 1000000));
  p.max_prepared_statements =
      static_cast<int>(s.integer("max_prepared_statements", p.max_prepared_statements, 0, 1000000));
  p.server_idle_timeout = s.duration("server_idle_timeout", p.server_idle_timeout);
  p.server_lifetime = s.duration("server_lifetime", p.server_lifetime);
  p.server_connect_timeout = s.duration("server_connect_timeout", p.server_connect_timeout);
  p.query_wait_timeout = s.duration("query_wait_timeout", p.query_wait_timeout);
  p.client_idle_timeout = s.duration("client_idle_timeout", p.client_idle_timeout);
  p.client_login_timeout = s.duration("client_login_timeout", p.client_login_timeout);
  p.max_message_size =
      s.integer("max_message_size", p.max_message_size, 1024, std::int64_t{1} << 30);
  p.shutdown_timeout = s.duration("shutdown_timeout", p.shutdown_timeout);
  p.state_file = s.string("state_file", p.state_file);
  if (p.state_file.empty()) fail(path, "proxy.state_file", "must not be empty");
  p.log_level = s.string("log_level", p.log_level);
  if (p.log_level != "debug" && p.log_level != "info" && p.log_level != "warn" &&
      p.log_level != "error") {
    fail(path, "proxy.log_level",
         "unknown value \"" + p.log_level + "\" (expected one of: debug, info, warn, error)");
  }
  {
    Section t(s.table("tls"), "proxy.tls", path);
    auto& tls = c.tls;
    tls.client_tls = t.enumeration("client_tls", tls.client_tls,
                                   {{"disable", ClientTls::kDisable},
                                    {"allow", ClientTls::kAllow},
                                    {"require", ClientTls::kRequire}});
    tls.cert_file = t.string("cert_file", tls.cert_file);
    tls.key_file = t.string("key_file", tls.key_file);
    if (tls.client_tls != ClientTls::kDisable && (tls.cert_file.empty() || tls.key_file.empty())) {
      fail(path, "proxy.tls.cert_file",
           "cert_file and key_file are required unless client_tls = \"disable\"");
    }
    t.finish();
  }
  s.finish();
}

// [auth] and [users.*]: how clients authenticate to the proxy.
void read_auth(Section& top, const std::string& path, Config& c) {
  Section auth(top.table("auth"), "auth", path);
  c.auth.auth_type =
      auth.enumeration("auth_type", c.auth.auth_type,
                       {{"scram-sha-256", AuthType::kScramSha256}, {"md5", AuthType::kMd5}});
  c.auth.auth_file = auth.string("auth_file", c.auth.auth_file);
  auth.finish();

  if (const toml::table* users = top.table("users")) {
    for (const auto& [name, node] : *users) {
      std::string key = "users." + std::string(name.str());
      if (!node.is_table())
        fail(path, key, std::string("expected a table, got ") + std::string(type_name(node)));
      Section s(node.as_table(), key, path);
      User u;
      u.name = std::string(name.str());
      bool has_password = s.has("password"), has_verifier = s.has("scram_verifier");
      if (has_password == has_verifier) {
        fail(path, key, "exactly one of password or scram_verifier is required");
      }
      if (has_password) {
        assign_secret(u, s.string("password", {}));
        if (u.password.empty() && u.scram_verifier.empty() && u.md5_hash.empty()) {
          fail(path, key + ".password", "must not be empty");
        }
      } else {
        u.scram_verifier = s.string("scram_verifier", {});
      }
      if (!u.scram_verifier.empty() && !looks_like_scram_verifier(u.scram_verifier)) {
        fail(path, has_password ? key + ".password" : key + ".scram_verifier",
             "malformed SCRAM verifier (expected "
             "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)");
      }
      s.finish();
      c.users.emplace(u.name, std::move(u));
    }
  }

  if (!c.auth.auth_file.empty()) {
    std::string file = c.auth.auth_file;
    if (file.front() != '/') file = dirname_of(path) + "/" + file;
    load_auth_file(path, file, c.users);
  }

  if (c.auth.auth_type == AuthType::kMd5) {
    for (const auto& [name, u] : c.users) {
      if (!u.scram_verifier.empty()) {
        fail(path, "users." + name,
             "auth_type = \"md5\" needs a plaintext password or md5 hash, not a SCRAM verifier");
      }
    }
  }
}

// [backends.*]: the databases the proxy connects to, at least one.
void read_backends(Section& top, const std::string& path, Config& c) {
  if (const toml::table* backends = top.table("backends")) {
    for (const auto& [name, node] : *backends) {
      std::string key = "backends." + std::string(name.str());
      if (!node.is_table())
        fail(path, key, std::string("expected a table, got ") + std::string(type_name(node)));
      Section s(node.as_table(), key, path);
      Backend b;
      b.name = std::string(name.str());
      std::string url = s.required_string("url");
      try {
        b.url = parse_backend_url(url);
      } catch (const ConfigError& e) {
        fail(path, key + ".url", e.what());
      }
      static const std::initializer_list<std::pair<std::string_view, SslMode>> kModes = {
          {"disable", SslMode::kDisable},
          {"require", SslMode::kRequire},
          {"verify-ca", SslMode::kVerifyCa},
          {"verify-full", SslMode::kVerifyFull}};
      bool key_has_mode = s.has("sslmode");
      b.sslmode = s.enumeration("sslmode", SslMode::kRequire, kModes);
      if (!b.url.sslmode.empty()) {
        // The URL's ?sslmode= applies, but a conflicting explicit key is a mistake we refuse
        // rather than guess which one the operator meant (one of them may weaken TLS).
        SslMode from_url{};
        bool known = false;
        for (const auto& [n, m] : kModes) {
          if (b.url.sslmode == n) {
            from_url = m;
            known = true;
          }
        }
        // The value is quoted to help with typos, but never with the password in it.
        const std::string shown = without_secret(b.url.sslmode, b.url.password);
        if (!known) {
          fail(path, key + ".url",
               "unknown sslmode \"" + shown +
                   "\" in the URL (expected one of: disable, require, verify-ca, verify-full)");
        }
        if (key_has_mode && from_url != b.sslmode) {
          fail(path, key + ".sslmode", "conflicts with sslmode=" + shown + " in the URL");
        }
        b.sslmode = from_url;
      }
      b.sslrootcert = s.string("sslrootcert", {});
      if (!b.url.sslrootcert.empty()) {
        if (!b.sslrootcert.empty() && b.sslrootcert != b.url.sslrootcert) {
          fail(path, key + ".sslrootcert", "conflicts with sslrootcert in the URL");
        }
        b.sslrootcert = b.url.sslrootcert;
      }
      if ((b.sslmode == SslMode::kVerifyCa || b.sslmode == SslMode::kVerifyFull) &&
          b.sslrootcert.empty()) {
        fail(path, key + ".sslrootcert", "required when sslmode is verify-ca or verify-full");
      }
      read_password_source_keys(s, key, path, b);
      s.finish();
      c.backends.emplace(b.name, std::move(b));
    }
  }

  if (c.backends.empty())
    fail(path, "backends", "at least one [backends.<name>] table is required");
}

// [cutover]: the initial backend and the pause and flip policies (after [backends]: it names one).
void read_cutover(Section& top, const std::string& path, Config& c) {
  Section s(top.table("cutover"), "cutover", path);
  auto& cu = c.cutover;
  cu.initial_backend = s.string("initial_backend", cu.initial_backend);
  if (!c.backend(cu.initial_backend)) {
    fail(path, "cutover.initial_backend", "no [backends." + cu.initial_backend + "] table");
  }
  cu.drain_timeout = s.duration("drain_timeout", cu.drain_timeout);
  cu.drain_policy =
      s.enumeration("drain_policy", cu.drain_policy,
                    {{"abort", DrainPolicy::kAbort}, {"cancel", DrainPolicy::kCancel}});
  cu.max_pause = s.duration("max_pause", cu.max_pause);
  cu.prewarm = s.boolean("prewarm", cu.prewarm);
  cu.prewarm_ttl = s.duration("prewarm_ttl", cu.prewarm_ttl);
  cu.unmovable_policy = s.enumeration(
      "unmovable_policy", cu.unmovable_policy,
      {{"block", UnmovablePolicy::kBlock}, {"terminate", UnmovablePolicy::kTerminate}});
  s.finish();
}

// [admin]: the HTTP admin API.
void read_admin(Section& top, const std::string& path, Config& c) {
  Section s(top.table("admin"), "admin", path);
  c.admin.listen_addr = s.string("listen_addr", c.admin.listen_addr);
  c.admin.listen_port =
      static_cast<std::uint16_t>(s.integer("listen_port", c.admin.listen_port, 0, 65535));
  c.admin.token = s.string("token", {});
  c.admin.tls_cert_file = s.string("tls_cert_file", {});
  c.admin.tls_key_file = s.string("tls_key_file", {});
  if (c.admin.tls_cert_file.empty() != c.admin.tls_key_file.empty()) {
    fail(path, c.admin.tls_cert_file.empty() ? "admin.tls_cert_file" : "admin.tls_key_file",
         "HTTPS needs both admin.tls_cert_file and admin.tls_key_file (or neither for HTTP)");
  }
  s.finish();
}

// [fleet]: commands through the databases.
void read_fleet(Section& top, const std::string& path, Config& c) {
  Section s(top.table("fleet"), "fleet", path);
  auto& f = c.fleet;
  f.enabled = s.boolean("enabled", f.enabled);
  f.name = s.string("name", {});
  if (!f.name.empty() && !fleet::valid_member_name(f.name))
    fail(path, "fleet.name", "1 to 63 of letters, digits and . _ : @ - (got \"" + f.name + "\")");
  f.reconnect_interval = s.duration("reconnect_interval", f.reconnect_interval);
  if (f.reconnect_interval < std::chrono::milliseconds(100))
    fail(path, "fleet.reconnect_interval", "at least 0.1 seconds");
  if (const toml::node* n = s.get("channel")) {
    if (!n->is_array() || n->as_array()->empty())
      fail(path, "fleet.channel",
           std::string("expected a non-empty array of backend names, got ") +
               std::string(type_name(*n)));
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_string())
        fail(path, "fleet.channel",
             std::string("expected backend names, got ") + std::string(type_name(item)));
      std::string name = item.as_string()->get();
      if (!c.backend(name)) fail(path, "fleet.channel", "no [backends." + name + "] table");
      f.channel.push_back(name);
    }
  } else {
    for (const char* side : {"source", "target"})
      if (c.backend(side)) f.channel.emplace_back(side);
    if (f.channel.empty()) f.channel.push_back(c.cutover.initial_backend);
  }
  s.finish();
}

// [control]: what pgcutoverctl reads (the journal, the proxies to drive).
void read_control(Section& top, const std::string& path, Config& c) {
  Section s(top.table("control"), "control", path);
  c.control.journal = s.string("journal", c.control.journal);
  if (const toml::node* n = s.get("proxies")) {
    if (!n->is_array()) {
      fail(path, "control.proxies",
           std::string("expected an array of tables, got ") + std::string(type_name(*n)));
    }
    std::size_t i = 0;
    for (const toml::node& item : *n->as_array()) {
      std::string key = "control.proxies[" + std::to_string(i++) + "]";
      if (!item.is_table())
        fail(path, key, std::string("expected a table, got ") + std::string(type_name(item)));
      Section p(item.as_table(), key, path);
      ControlProxy cp;
      cp.admin_url = p.required_string("admin_url");
      cp.token = p.string("token", {});
      cp.ca_file = p.string("ca_file", {});
      if (!cp.ca_file.empty() && cp.admin_url.rfind("https://", 0) != 0)
        fail(path, key + ".ca_file",
             "ca_file is for an https:// admin_url; this one is " + cp.admin_url);
      p.finish();
      c.control.proxies.push_back(std::move(cp));
    }
  }
  s.finish();
}

}  // namespace

const Backend* Config::backend(std::string_view name) const {
  auto it = backends.find(name);
  return it == backends.end() ? nullptr : &it->second;
}

const User* Config::user(std::string_view name) const {
  auto it = users.find(name);
  return it == users.end() ? nullptr : &it->second;
}

Config Config::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, {}, "cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Config Config::parse(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(path, {},
         "line " + std::to_string(b.line) + " column " + std::to_string(b.column) + ": " +
             std::string(e.description()));
  }
  Config c;
  c.path = path;
  Section top(&root, "", path);

  read_proxy(top, path, c);
  read_auth(top, path, c);
  read_backends(top, path, c);
  read_cutover(top, path, c);
  if (const toml::table* routes = top.table("routes")) read_routes(*routes, path, c);
  read_admin(top, path, c);
  read_fleet(top, path, c);
  read_control(top, path, c);
  top.finish();
  return c;
}

}  // namespace pgcutover
