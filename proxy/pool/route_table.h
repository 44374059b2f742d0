// Which backend serves which client-side database name, on the side the proxy is on now.
// [routes.*] (config.h, Route) give a database name its own backend per side, e.g.
// app_reports -> the Heroku follower on "source" and the RDS read replica on "target"; every
// other name goes to the side's own backend (the default route, today's single-pair setup).
// A flip switches the side for every route at once under one epoch: each shard swaps its
// RouteTable for the new side's and its pools open new server connections from it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

class RouteTable {
 public:
  struct Entry {
    std::string route;    // routes.<name>; "" for the default route
    std::string backend;  // the backend serving it on this side ("r1,r2" for readers)
    bool read_only = false;
    std::shared_ptr<const BackendEndpoint> endpoint;  // the backend (the first reader)
    // Several readers (Aurora / RDS read replicas) balanced by least outstanding queries
    // (proxy/pool/reader_balance.h); empty for a single backend.
    std::vector<std::shared_ptr<const BackendEndpoint>> readers;
  };

  // Resolves every route of `settings` for `side` (a backend name such as "target"). Read-only
  // routes get an endpoint whose server connections start with
  // default_transaction_read_only = on, so a write is refused even if the replica behind the
  // route was promoted. Null with `error` set when the side is unknown or a route has no
  // backend for it.
  static std::shared_ptr<const RouteTable> build(const Settings& settings, const std::string& side,
                                                 std::string& error);

  const std::string& side() const { return side_; }
  // The entry serving `database` (the default route for names no route claims).
  const Entry& for_database(std::string_view database) const;
  const Entry& default_route() const { return default_; }
  // Database name -> entry, for the routes of the config (not the default one).
  const std::map<std::string, Entry, std::less<>>& routes() const { return by_database_; }

 private:
  std::string side_;
  Entry default_;
  std::map<std::string, Entry, std::less<>> by_database_;
};

// The routes as a JSON array for /v1/status: the default route and each [routes.*] with its
// database name, read_only, the backend serving it now and its backend per side.
std::string render_routes_json(const RouteTable& table, const Config& config);

}  // namespace pgcutover::proxy
