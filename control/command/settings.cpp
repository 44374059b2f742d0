#include "control/command/settings.h"

#include "common/config.h"

namespace pgcutover::control {
namespace {

// The proxy's parsed backend, as libpq keywords: the control plane connects exactly the way
// the proxy does (same credentials, same TLS verification).
ConnSpec spec_from_backend(const Backend& b) {
  ConnSpec s;
  s.set("host", b.url.host);
  s.set("port", std::to_string(b.url.port));
  s.set("user", b.url.user);
  s.set("password", b.url.password);
  s.set("dbname", b.url.dbname.empty() ? b.url.user : b.url.dbname);
  s.set("sslmode", std::string(to_string(b.sslmode)));
  s.set("sslrootcert", b.sslrootcert);
  for (const auto& [k, v] : b.url.startup_params)
    if (k == "options") s.set("options", v);
  return s;
}

}  // namespace

std::optional<ControlSettings> load_settings(const SettingsOverrides& o, std::string& error) {
  ControlSettings s;
  if (!o.config_path.empty()) {
    try {
      Config cfg = Config::load(o.config_path);
      s.have_config = true;
      if (const auto* b = cfg.backend("source")) {
        s.source = spec_from_backend(*b);
        s.source_origin = o.config_path + " [backends.source]";
      }
      if (const auto* b = cfg.backend("target")) {
        s.target = spec_from_backend(*b);
        s.target_origin = o.config_path + " [backends.target]";
      }
      for (const auto& p : cfg.control.proxies)
        s.proxies.push_back({p.admin_url, p.token, p.ca_file});
      s.default_pool_size = cfg.proxy.default_pool_size;
      // One pool per (database, user); the proxy serves one database per backend.
      s.pool_count = static_cast<int>(cfg.users.size());
      s.proxy_listen_addr = cfg.proxy.listen_addr;
      s.journal = cfg.control.journal;
      for (const auto& [name, route] : cfg.routes) {
        RouteSpec r{name, route.database, route.read_only, {}, {}};
        for (const char* side : {"source", "target"}) {
          auto it = route.backends.find(side);
          if (it == route.backends.end()) continue;
          auto& list = std::string_view(side) == "source" ? r.source : r.target;
          for (const auto& backend : it->second)
            list.push_back({backend, spec_from_backend(*cfg.backend(backend))});
        }
        s.routes.push_back(std::move(r));
      }
    } catch (const ConfigError& e) {
      error = std::string(e.what()) + " (fix the file, or set the environment variable it names)";
      return std::nullopt;
    } catch (const std::exception& e) {
      error = o.config_path + ": " + e.what();
      return std::nullopt;
    }
  }
  if (!o.source_url.empty()) {
    std::string e;
    s.source = ConnSpec::parse(o.source_url, e);
    if (!s.source) {
      error = "--source-url: " + e;
      return std::nullopt;
    }
    s.source_origin = "--source-url";
  }
  if (!o.target_url.empty()) {
    std::string e;
    s.target = ConnSpec::parse(o.target_url, e);
    if (!s.target) {
      error = "--target-url: " + e;
      return std::nullopt;
    }
    s.target_origin = "--target-url";
  }
  s.proxy_addrs = o.proxy_addrs;
  return s;
}

}  // namespace pgcutover::control
