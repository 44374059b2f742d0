// Server connections of one (database, user) client key on one shard. Every connection goes to
// the backend the shard's route table gives the database name on the active side (the side's
// own backend unless a [routes.*] claims the name), with that backend's credentials.
// Single-threaded (the shard's thread): no locks. Waiting clients queue FIFO with a bound
// (query_wait_timeout).
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "proxy/net/asio.h"
#include "proxy/pool/reader_balance.h"
#include "proxy/pool/route_table.h"
#include "proxy/pool/server_connection.h"
#include "proxy/pool/session_params.h"
#include "proxy/pool/shard_context.h"

namespace pgcutover::proxy {

class ServerPool {
 public:
  ServerPool(ShardContext& shard, std::string database, std::string user);
  ~ServerPool();

  struct Lease {
    std::unique_ptr<ServerConnection> conn;
    ServerError error;  // when conn is null
  };
  // An idle healthy connection of the current epoch, a new one when below the pool size, or
  // the next one released, within query_wait_timeout.
  awaitable<Lease> acquire();

  enum class Return { kReuse, kClose };
  // kReuse only for a connection known clean: ReadyForQuery 'I' with nothing outstanding, or
  // after a successful DISCARD ALL. Anything else is closed (never reused dirty).
  void release(std::unique_ptr<ServerConnection> conn, Return how);

  // Periodic: reap idle connections (server_idle_timeout, server_lifetime, stale epoch) and
  // open up to min_pool_size.
  void maintain(Clock::time_point now);
  // Retarget: forget the welcome parameters and close idle connections of older epochs; busy
  // ones are closed when released.
  void on_retarget();
  // Takes a prewarmed connection of the current epoch (retarget) as one of its own.
  void adopt(std::unique_ptr<ServerConnection> conn);

  // ParameterStatus set of a fresh server connection (what a new client is told at login).
  const ParamMap* welcome() const { return welcome_ ? &*welcome_ : nullptr; }
  // The settings a client logging in with `startup` settings starts from: the tracked welcome
  // parameters plus its own. Clients that logged in alike get the same shared copy.
  std::shared_ptr<DesiredSettings> login_settings(const ParamMap& startup);

  std::size_t open_count() const { return open_; }
  // The default route (the side's own backend), not a [routes.*] replica: what prewarm serves.
  bool on_default_route() const { return route_->route.empty(); }
  std::size_t idle_count() const { return idle_.size(); }
  // acquire() would not queue now: an idle connection is there or the pool may open one.
  bool available_now() const { return !idle_.empty() || open_ < shard_.pool_size(); }
  std::size_t waiting_count() const { return waiters_.size(); }
  const std::string& database() const { return database_; }
  const std::string& user() const { return user_; }

 private:
  struct Waiter {
    asio::steady_timer* timer;
    std::unique_ptr<ServerConnection> conn;
    bool slot_freed = false;
    bool served = false;
  };
  bool usable(ServerConnection& c, Clock::time_point now) const;
  // Several readers on this pool's route (proxy/pool/reader_balance.h).
  bool balanced() const { return !route_->readers.empty(); }
  // Index in idle_ of the most recently used connection to `backend`, or idle_.size().
  std::size_t idle_on(const std::string& backend) const;
  void count_assigned(const ServerConnection& c, int delta);
  // Index in idle_ of the connection on the least loaded (healthy first) reader.
  std::size_t least_loaded_idle() const;
  // `later`: the socket closes a second from now (a flip's old connections, see close_later).
  void close_conn(std::unique_ptr<ServerConnection> conn, const char* why, bool later = false);
  static void close_later(const asio::any_io_executor& executor,
                          std::unique_ptr<ServerConnection> conn);
  void wake_one_for_slot();
  awaitable<void> open_spare();

  ShardContext& shard_;
  std::string database_;
  std::string user_;
  std::deque<std::unique_ptr<ServerConnection>> idle_;  // most recently used at the back
  std::list<Waiter*> waiters_;
  std::size_t open_ = 0;  // idle + assigned + connecting
  std::optional<ParamMap> welcome_;
  std::unordered_map<std::string, std::weak_ptr<DesiredSettings>> login_settings_;  // by key
  // The route serving database_ on the shard's side (owned by the shard's RouteTable, renewed
  // by on_retarget()), and the outstanding queries per reader when it has several.
  const RouteTable::Entry* route_;
  ReaderLoad load_;
  ReaderLoad opened_;  // this pool's connections per reader (idle, assigned or connecting)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgcutover::proxy
