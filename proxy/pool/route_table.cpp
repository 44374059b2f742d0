#include "proxy/pool/route_table.h"

#include "common/json.h"

namespace pgcutover::proxy {

std::shared_ptr<const RouteTable> RouteTable::build(const Settings& settings,
                                                    const std::string& side, std::string& error) {
  auto table = std::make_shared<RouteTable>();
  table->side_ = side;
  table->default_.backend = side;
  table->default_.endpoint = settings.endpoint(side);
  if (!table->default_.endpoint) {
    error = "unknown backend \"" + side + "\"";
    return nullptr;
  }
  for (const auto& [name, route] : settings.config.routes) {
    auto it = route.backends.find(side);
    if (it == route.backends.end()) {
      error = "routes." + name + " has no backend for \"" + side + "\" (add " + side +
              " = \"<backend>\" to its backends)";
      return nullptr;
    }
    Entry entry{name, {}, route.read_only, nullptr, {}};
    for (const auto& backend : it->second) {
      auto endpoint = settings.endpoint(backend);
      if (!endpoint) {
        error = "routes." + name + ": unknown backend \"" + backend + "\"";
        return nullptr;
      }
      if (route.read_only) {
        // Same TLS context and live password; one more startup parameter. PostgreSQL accepts
        // any setting in the startup packet, and RESET / DISCARD ALL return to it.
        auto ro = std::make_shared<BackendEndpoint>(*endpoint);
        ro->backend.url.startup_params.emplace_back("default_transaction_read_only", "on");
        endpoint = std::move(ro);
      }
      if (!entry.backend.empty()) entry.backend += ",";
      entry.backend += backend;
      if (!entry.endpoint) entry.endpoint = endpoint;
      entry.readers.push_back(std::move(endpoint));
    }
    if (entry.readers.size() < 2) entry.readers.clear();
    table->by_database_.emplace(route.database, std::move(entry));
  }
  return table;
}

const RouteTable::Entry& RouteTable::for_database(std::string_view database) const {
  if (by_database_.empty()) return default_;  // the usual single-pair setup: no lookup
  auto it = by_database_.find(database);
  return it == by_database_.end() ? default_ : it->second;
}

std::string render_routes_json(const RouteTable& table, const Config& config) {
  json::Writer w;
  w.begin_array();
  w.begin_object()
      .field("route", "default")
      .field("database", "*")
      .field("read_only", false)
      .field("backend", table.default_route().backend)
      .end_object();
  for (const auto& [database, entry] : table.routes()) {
    w.begin_object()
        .field("route", entry.route)
        .field("database", database)
        .field("read_only", entry.read_only)
        .field("backend", entry.backend);
    w.key("backends").begin_object();
    if (const auto it = config.routes.find(entry.route); it != config.routes.end()) {
      for (const auto& [side, names] : it->second.backends) {
        w.key(side).begin_array();
        for (const auto& n : names) w.value(n);
        w.end_array();
      }
    }
    w.end_object().end_object();
  }
  w.end_array();
  return w.take();
}

}  // namespace pgcutover::proxy
