// The configuration contract (deploy/examples/pgcutover.toml, documented in
// docs/configuration.md), read by pgcutover-proxy and, for [backends], [admin] and [control],
// by pgcutoverctl. Loading throws ConfigError naming the file, the key and the problem; every
// unknown key is an error so that a typo never silently falls back to a default. Secrets
// (passwords, tokens, verifiers) never appear in an error message.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgcutover {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Duration = std::chrono::milliseconds;

enum class PoolMode { kSession, kTransaction };
enum class ClientTls { kDisable, kAllow, kRequire };
enum class SslMode { kDisable, kRequire, kVerifyCa, kVerifyFull };
enum class AuthType { kScramSha256, kMd5 };
// What a pause does when running transactions outlive the drain timeout: reopen the gate on the
// current backend and report the blockers, or cancel them and stay paused.
enum class DrainPolicy { kAbort, kCancel };
// Session mode: what a flip does about sessions holding state that cannot move to the new
// backend (LISTEN, temp tables, session advisory locks, WITH HOLD cursors): refuse the flip and
// list them, or end them with FATAL 57P01 so the application reconnects.
enum class UnmovablePolicy { kBlock, kTerminate };

std::string_view to_string(PoolMode m);
std::string_view to_string(ClientTls m);
std::string_view to_string(SslMode m);
std::string_view to_string(AuthType m);
std::string_view to_string(DrainPolicy m);
bool parse_drain_policy(std::string_view text, DrainPolicy& out);  // "abort" | "cancel"

// A postgres:// or postgresql:// URL, percent-decoded.
struct BackendUrl {
  std::string user;
  std::string password;  // secret: never log
  std::string host;
  std::uint16_t port = 5432;
  std::string dbname;  // defaults to user
  // Query parameters other than sslmode/sslrootcert that become startup parameters of every
  // server connection (application_name, options).
  std::vector<std::pair<std::string, std::string>> startup_params;
  // sslmode / sslrootcert given in the query string (empty when absent).
  std::string sslmode;
  std::string sslrootcert;
};

// Parses a backend URL. Throws ConfigError with a message that never contains the password
// (the caller prefixes file and key).
BackendUrl parse_backend_url(std::string_view url);

// Where a backend's password comes from when it is kept out of the URL: a file (a Kubernetes
// Secret volume, a file a rotation job rewrites) or a command (a secrets manager's CLI). Read
// at load and reload, and again by the proxy when the backend refuses its password
// (proxy/settings/backend_secret.h), so a rotated password is picked up without a restart.
struct PasswordSource {
  enum class Kind { kUrl, kFile, kCommand };
  Kind kind = Kind::kUrl;  // kUrl: the password in the URL, fixed until a reload
  std::string file;        // password_file (absolute)
  std::string command;     // password_command, run with /bin/sh -c
  Duration timeout = std::chrono::seconds(10);  // password_command_timeout
};

struct Backend {
  std::string name;
  BackendUrl url;  // url.password is the current secret, from the URL or the password source
  SslMode sslmode = SslMode::kRequire;
  std::string sslrootcert;  // CA bundle for verify-ca / verify-full
  PasswordSource password_source;
};

// A client-side database name served by its own backends: `backends` maps each side the proxy
// can be on (a backend name such as "source" or "target", what a flip names) to the backend
// this route uses then, e.g. {source = "source_follower", target = "target_replica"}, or to
// several readers balanced by least outstanding queries (target = ["reader1", "reader2"]).
// Client database names no route claims go to the side's own backend (the default route).
struct Route {
  std::string name;
  std::string database;  // the name clients put in their startup packet (default: name)
  // side -> backend names (one, or several readers)
  std::map<std::string, std::vector<std::string>, std::less<>> backends;
  bool read_only = false;  // a replica: every transaction is read-only, writes get 25006
};

struct ProxySettings {
  std::string listen_addr = "127.0.0.1";
  std::uint16_t listen_port = 6432;
  std::string unix_socket_dir;
  int threads = 0;  // 0 = one per core
  PoolMode pool_mode = PoolMode::kTransaction;
  int default_pool_size = 20;
  int min_pool_size = 0;
  int max_client_conn = 1000;
  int max_prepared_statements = 200;
  Duration server_idle_timeout = std::chrono::seconds(600);
  Duration server_lifetime = std::chrono::seconds(3600);
  Duration server_connect_timeout = std::chrono::seconds(5);
  Duration query_wait_timeout = std::chrono::seconds(120);
  Duration client_idle_timeout{0};  // 0 = never
  Duration client_login_timeout = std::chrono::seconds(15);
  std::int64_t max_message_size = 64 * 1024 * 1024;
  Duration shutdown_timeout = std::chrono::seconds(30);
  std::string state_file = "/var/lib/pgcutover/state.json";
  std::string log_level = "info";
};

struct ClientTlsSettings {
  ClientTls client_tls = ClientTls::kAllow;
  std::string cert_file = "/etc/pgcutover/server.crt";
  std::string key_file = "/etc/pgcutover/server.key";
};

struct AuthSettings {
  AuthType auth_type = AuthType::kScramSha256;
  std::string auth_file;
};

// A user the proxy accepts. Exactly one secret form is set.
struct User {
  std::string name;
  std::string password;        // plaintext (secret)
  std::string scram_verifier;  // SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>
  std::string md5_hash;        // "md5" + 32 hex digits (PgBouncer userlist form)
};

struct CutoverSettings {
  std::string initial_backend = "source";
  Duration drain_timeout = std::chrono::seconds(5);
  DrainPolicy drain_policy = DrainPolicy::kAbort;
  Duration max_pause = std::chrono::seconds(30);
  bool prewarm = true;
  // Session state that cannot move at a flip (LISTEN, temp tables, advisory locks, WITH HOLD
  // cursors): refuse the flip (block) or end those sessions with 57P01 (terminate).
  UnmovablePolicy unmovable_policy = UnmovablePolicy::kBlock;
  Duration prewarm_ttl = std::chrono::seconds(60);  // warm connections unused this long close
};

struct AdminSettings {
  std::string listen_addr = "127.0.0.1";
  std::uint16_t listen_port = 6480;
  std::string token;  // secret
  // Both set: the admin API speaks HTTPS only (certificate chain and key, PEM).
  std::string tls_cert_file;
  std::string tls_key_file;
};

// [fleet]: this proxy takes its commands through the databases (common/fleet_contract.h)
// instead of (or besides) the admin API, for places no controller can reach.
struct FleetSettings {
  bool enabled = false;
  std::string name;  // empty: $DYNO.<host> on Heroku, else <host>.<pid> (unique per process)
  // The backends that carry the channel (and the authority). Default: source and target.
  std::vector<std::string> channel;
  Duration reconnect_interval = std::chrono::seconds(2);  // after a lost control session
};

struct ControlProxy {
  std::string admin_url;
  std::string token;    // secret
  std::string ca_file;  // https admin_url: the CA that signed the proxy's admin certificate
};

struct ControlSettings {
  std::string journal = "/var/lib/pgcutover/flip.journal";
  std::vector<ControlProxy> proxies;
};

struct Config {
  std::string path;  // the file this was loaded from
  ProxySettings proxy;
  ClientTlsSettings tls;
  AuthSettings auth;
  std::map<std::string, User, std::less<>> users;  // [users.*] merged with auth_file
  std::map<std::string, Backend, std::less<>> backends;
  std::map<std::string, Route, std::less<>> routes;  // [routes.*]; empty: one default route
  CutoverSettings cutover;
  AdminSettings admin;
  FleetSettings fleet;
  ControlSettings control;

  // Reads and validates `path`. Throws ConfigError("<path>: <key>: <problem>").
  static Config load(const std::string& path);
  // Same, from text already in memory; `path` is used in messages and to resolve auth_file.
  static Config parse(std::string_view text, const std::string& path);

  const Backend* backend(std::string_view name) const;
  const User* user(std::string_view name) const;
};

// Replaces every ${NAME} in `text` by the environment variable NAME. Throws ConfigError
// naming the variable when it is unset (the caller prefixes file and key). "$$" is a literal
// "$", so a password containing "${" can still be written.
std::string substitute_env(std::string_view text);

}  // namespace pgcutover
