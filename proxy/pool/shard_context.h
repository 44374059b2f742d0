// What the pools and sessions of one shard read about where they run: the shard's executor,
// its settings snapshot, the active side's routes and epoch, its share of the pool sizes.
// Owned by the shard (proxy/runtime/shard.h), which hands it to them by reference and is the
// only one to change it (a reload, a flip, a shutdown). Shard thread only: no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "proxy/net/asio.h"
#include "proxy/pool/route_table.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

class ShardContext {
 public:
  ShardContext(asio::any_io_executor executor, int index, int shard_count,
               std::shared_ptr<const Settings> settings, std::shared_ptr<const RouteTable> routes,
               std::uint64_t epoch);

  int index() const { return index_; }
  const asio::any_io_executor& executor() const { return executor_; }
  const std::shared_ptr<const Settings>& settings() const { return settings_; }
  // Every route on the current side; a pool finds its backend here (proxy/pool/route_table.h).
  const RouteTable& routes() const { return *routes_; }
  // The default route's endpoint (the side's own backend).
  const std::shared_ptr<const BackendEndpoint>& endpoint() const {
    return routes_->default_route().endpoint;
  }
  std::uint64_t epoch() const { return epoch_; }
  bool stopping() const { return stopping_; }
  std::size_t pool_size() const;      // this shard's share of default_pool_size (>= 1)
  std::size_t min_pool_size() const;  // this shard's share of min_pool_size

  // ---- changed by the shard only ----
  void set_settings(std::shared_ptr<const Settings> settings) { settings_ = std::move(settings); }
  void set_side(std::shared_ptr<const RouteTable> routes, std::uint64_t epoch);
  void set_stopping() { stopping_ = true; }

 private:
  asio::any_io_executor executor_;
  int index_;
  int shard_count_;
  std::shared_ptr<const Settings> settings_;
  std::shared_ptr<const RouteTable> routes_;
  std::uint64_t epoch_;
  bool stopping_ = false;
};

}  // namespace pgcutover::proxy
