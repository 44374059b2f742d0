// What pgcutoverctl needs to know about the world: the source and target databases, the
// proxies' admin endpoints and pool sizes. Read from the same TOML file as the proxy
// (proxy/config.h), with --source-url / --target-url overriding the backends.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/command/admin_client.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

using ProxyAdminEndpoint = AdminEndpoint;  // control/admin_client.h

// One [routes.*] of the proxy's config: a database name with its own backend per side (a
// Heroku follower and an RDS read replica, say). Preflight reports each side's replica lag
// and who reads from the follower without the proxy.
struct RouteSpec {
  std::string name;
  std::string database;
  bool read_only = false;
  // Its backends (name, connection) on the "source" and "target" sides: one, or several
  // readers; empty when the route has none for that side.
  std::vector<std::pair<std::string, ConnSpec>> source;
  std::vector<std::pair<std::string, ConnSpec>> target;
};

struct ControlSettings {
  std::optional<ConnSpec> source;
  std::optional<ConnSpec> target;
  std::string source_origin = "--source-url";  // where the source came from, for messages
  std::string target_origin = "--target-url";
  std::vector<ProxyAdminEndpoint> proxies;
  bool have_config = false;
  // From [proxy]: what preflight compares against target max_connections.
  int default_pool_size = 0;
  int pool_count = 0;  // (database, user) pools per proxy
  std::string proxy_listen_addr;
  // Addresses the proxies connect to the source from (--proxy-addr): their sessions are
  // expected; any other client session on the source bypasses the proxy.
  std::vector<std::string> proxy_addrs;
  std::string journal;
  std::vector<RouteSpec> routes;  // [routes.*] of the config (empty without -c)
};

struct SettingsOverrides {
  std::string config_path;  // -c/--config, or $PGCUTOVER_CONFIG
  std::string source_url;   // --source-url
  std::string target_url;   // --target-url
  std::vector<std::string> proxy_addrs;
};

// Loads settings; on failure returns nullopt with a message saying what to fix.
std::optional<ControlSettings> load_settings(const SettingsOverrides& overrides,
                                             std::string& error);

}  // namespace pgcutover::control
