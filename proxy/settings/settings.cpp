#include "proxy/settings/settings.h"

#include "proxy/net/tls_context.h"
#include "proxy/settings/backend_secret.h"

namespace pgcutover::proxy {

std::shared_ptr<const Settings> Settings::build(Config config) {
  auto s = std::make_shared<Settings>();
  const std::string& path = config.path;
  if (config.tls.client_tls != ClientTls::kDisable) {
    std::string error;
    s->client_tls = make_client_tls_context(config.tls, error);
    if (!s->client_tls) throw ConfigError(path + ": proxy.tls: " + error);
  }
  for (const auto& [name, backend] : config.backends) {
    auto ep = std::make_shared<BackendEndpoint>();
    ep->backend = backend;
    std::string error;
    ep->tls = make_backend_tls_context(backend, error);
    if (backend.sslmode != SslMode::kDisable && !ep->tls) throw ConfigError(path + ": " + error);
    ep->secret =
        std::make_shared<BackendSecret>(name, backend.password_source, backend.url.password);
    s->backends.emplace(name, std::move(ep));
  }
  for (const auto& [name, user] : config.users) {
    UserSecret secret;
    if (!user.scram_verifier.empty()) {
      secret.scram = protocol::parse_scram_verifier(user.scram_verifier);
      if (!secret.scram)
        throw ConfigError(path + ": users." + name + ": SCRAM verifier does not decode");
    } else if (!user.password.empty()) {
      // Done once here so that a login never pays for PBKDF2 on the proxy's side.
      secret.scram = protocol::make_scram_verifier(user.password);
      secret.md5_or_plain = user.password;
    } else {
      secret.md5_or_plain = user.md5_hash;
    }
    s->users.emplace(name, std::move(secret));
  }
  s->client_limits.max_message = static_cast<std::size_t>(config.proxy.max_message_size);
  // Rows from the server may be as large as PostgreSQL allows (1 GB); the relay streams them.
  s->server_limits.max_message = std::size_t{1} << 30;
  s->config = std::move(config);
  return s;
}

std::shared_ptr<const BackendEndpoint> Settings::endpoint(std::string_view name) const {
  auto it = backends.find(name);
  return it == backends.end() ? nullptr : it->second;
}

bool Settings::serves_database(std::string_view name) const {
  for (const auto& [backend, endpoint] : backends) {
    if (endpoint->backend.url.dbname == name) return true;
  }
  for (const auto& [route, config] : config.routes) {
    if (config.database == name) return true;
  }
  return false;
}

}  // namespace pgcutover::proxy
