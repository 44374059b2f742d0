// One worker thread with its own io_context, its own listening sockets (SO_REUSEPORT: the
// kernel spreads new connections over the shards), its own server pools and its own sessions.
// Nothing here is locked: everything is touched only on the shard's thread. Other threads
// reach a shard by posting to its executor (DataPlane does, for reload, cancel and cutover).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "proxy/net/asio.h"
#include "proxy/pool/route_table.h"
#include "proxy/pool/server_pool.h"
#include "proxy/pool/warm_pool.h"
#include "proxy/session/gate.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

class ClientSession;
class DataPlane;

class Shard {
 public:
  Shard(DataPlane& plane, int index, int shard_count, std::shared_ptr<const Settings> settings,
        std::shared_ptr<const RouteTable> routes, std::uint64_t epoch);
  ~Shard();

  int index() const { return index_; }
  DataPlane& plane() { return plane_; }
  asio::io_context& io() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }

  // ---- state read by sessions and pools (shard thread only) ----
  const std::shared_ptr<const Settings>& settings() const { return settings_; }
  // The default route's endpoint (the side's own backend).
  const std::shared_ptr<const BackendEndpoint>& endpoint() const {
    return routes_->default_route().endpoint;
  }
  // Every route on the current side; a pool finds its backend here (proxy/route_table.h).
  const RouteTable& routes() const { return *routes_; }
  std::uint64_t epoch() const { return epoch_; }
  std::size_t pool_size() const;      // this shard's share of default_pool_size (>= 1)
  std::size_t min_pool_size() const;  // this shard's share of min_pool_size
  bool stopping() const { return stopping_; }
  ServerPool& pool(const std::string& database, const std::string& user);
  Gate& gate() { return gate_; }

  // ---- hooks for the cutover engine (call on the shard thread, e.g. via asio::post) ----
  // Server connections assigned to a client and inside a transaction (or with a query in
  // flight): PAUSE is complete when this is zero on every shard with the gate closed.
  std::int64_t servers_in_transaction() const { return busy_; }
  // Switch every pool to another side under a new epoch: idle connections of older epochs
  // are closed now, busy ones when their client releases them; new ones go to the backend
  // `routes` gives their database name (every route flips at once).
  void retarget(std::shared_ptr<const RouteTable> routes, std::uint64_t epoch);
  void set_settings(std::shared_ptr<const Settings> settings) { settings_ = std::move(settings); }
  // Prewarm: connections to a flip's target, handed to the pools by retarget().
  WarmPool& warm() { return warm_; }
  // How many server connections the pools of this shard have open (each at most its size):
  // what a prewarm opens, so the pools resume at the size they had.
  std::size_t warm_target() const;

  // ---- sessions ----
  void add_session(const std::shared_ptr<ClientSession>& session);
  void remove_session(std::uint64_t id);
  std::shared_ptr<ClientSession> find_session(std::uint64_t id);
  // Calls f(ClientSession&) for every live session (shard thread only).
  template <class F>
  void for_each_session(F&& f) {
    for (auto& [id, weak] : sessions_)
      if (auto s = weak.lock()) f(*s);
  }
  void busy_changed(bool busy) { busy_ += busy ? 1 : -1; }

  // ---- lifecycle ----
  // Opens this shard's listening sockets; throws std::system_error naming the address.
  void listen(const ProxySettings& cfg);
  void start();  // runs the io_context on a new thread
  void join();
  // Stop accepting; sessions end at their next transaction boundary.
  void begin_shutdown();
  // End every session now (shutdown_timeout passed).
  void terminate_all();
  std::size_t session_count() const { return sessions_.size(); }

 private:
  // One loop for TCP and Unix listeners (instantiated in shard.cpp only).
  template <class Acceptor>
  awaitable<void> accept_loop(Acceptor& acceptor);
  awaitable<void> maintenance();
  void start_session(std::shared_ptr<class Stream> stream);

  DataPlane& plane_;
  int index_;
  int shard_count_;
  asio::io_context io_{1};
  std::shared_ptr<const Settings> settings_;
  std::shared_ptr<const RouteTable> routes_;
  std::uint64_t epoch_;
  Gate gate_;
  WarmPool warm_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ServerPool>> pools_;
  std::unordered_map<std::uint64_t, std::weak_ptr<ClientSession>> sessions_;
  std::unique_ptr<tcp::acceptor> tcp_acceptor_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor_;
  std::unique_ptr<asio::steady_timer> maintenance_timer_;
  std::thread thread_;
  bool stopping_ = false;
  std::int64_t busy_ = 0;
};

}  // namespace pgcutover::proxy
