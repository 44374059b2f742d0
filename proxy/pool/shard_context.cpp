#include "proxy/pool/shard_context.h"

#include <algorithm>

namespace pgcutover::proxy {

ShardContext::ShardContext(asio::any_io_executor executor, int index, int shard_count,
                           std::shared_ptr<const Settings> settings,
                           std::shared_ptr<const RouteTable> routes, std::uint64_t epoch)
    : executor_(std::move(executor)),
      index_(index),
      shard_count_(shard_count),
      settings_(std::move(settings)),
      routes_(std::move(routes)),
      epoch_(epoch) {}

std::size_t ShardContext::pool_size() const {
  // default_pool_size is per (database, user) for the whole proxy; each shard gets its share,
  // the first shards one more when it does not divide, and never less than one.
  std::size_t total = static_cast<std::size_t>(settings_->config.proxy.default_pool_size);
  std::size_t n = static_cast<std::size_t>(shard_count_);
  std::size_t share = total / n + (static_cast<std::size_t>(index_) < total % n ? 1 : 0);
  return std::max<std::size_t>(share, 1);
}

std::size_t ShardContext::min_pool_size() const {
  std::size_t total = static_cast<std::size_t>(settings_->config.proxy.min_pool_size);
  std::size_t n = static_cast<std::size_t>(shard_count_);
  return std::min(total / n + (static_cast<std::size_t>(index_) < total % n ? 1 : 0), pool_size());
}

void ShardContext::set_side(std::shared_ptr<const RouteTable> routes, std::uint64_t epoch) {
  routes_ = std::move(routes);
  epoch_ = epoch;
}

}  // namespace pgcutover::proxy
