// One worker thread with its own io_context, its own server pools and its own sessions. Shard 0
// also owns the listening sockets and hands each new connection to the shard with the fewest
// clients (the port is never shared: see listen()).
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
#include "proxy/pool/shard_context.h"
#include "proxy/pool/warm_pool.h"
#include "proxy/runtime/handover.h"
#include "proxy/session/gate.h"
#include "proxy/session/session_host.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

class ClientSession;
class DataPlane;

class Shard final : public SessionHost {
 public:
  Shard(DataPlane& plane, int index, int shard_count, std::shared_ptr<const Settings> settings,
        std::shared_ptr<const RouteTable> routes, std::uint64_t epoch);
  ~Shard();

  int index() const { return context_.index(); }
  asio::io_context& io() { return io_; }
  const std::shared_ptr<const BackendEndpoint>& endpoint() const { return context_.endpoint(); }
  std::size_t pool_size() const { return context_.pool_size(); }

  // ---- SessionHost: what this shard hands its sessions (and, the context, its pools) ----
  ShardContext& context() override { return context_; }
  ServerPool& pool(const std::string& database, const std::string& user) override;
  Gate& gate() override { return gate_; }
  void busy_changed(bool busy) override { busy_ += busy ? 1 : -1; }
  void session_ended(std::uint64_t id) override;
  CancelRegistry& cancels() override;
  void route_cancel(CancelRegistry::Key key) override;
  std::atomic<int>& client_count() override;
  bool read_only() const override;
  void fenced_write_seen() override;

  // ---- hooks for the cutover engine (call on the shard thread, e.g. via asio::post) ----
  // Server connections assigned to a client and inside a transaction (or with a query in
  // flight): PAUSE is complete when this is zero on every shard with the gate closed.
  std::int64_t servers_in_transaction() const { return busy_; }
  // Switch every pool to another side under a new epoch: idle connections of older epochs
  // are closed now, busy ones when their client releases them; new ones go to the backend
  // `routes` gives their database name (every route flips at once).
  void retarget(std::shared_ptr<const RouteTable> routes, std::uint64_t epoch);
  void set_settings(std::shared_ptr<const Settings> settings) {
    context_.set_settings(std::move(settings));
  }
  // Prewarm: connections to a flip's target, handed to the pools by retarget().
  WarmPool& warm() { return warm_; }
  // How many server connections the pools of this shard have open (each at most its size):
  // what a prewarm opens, so the pools resume at the size they had. Remembered per pool for
  // the retarget that adopts them.
  std::size_t warm_target();

  // ---- sessions ----
  void add_session(const std::shared_ptr<ClientSession>& session);
  std::shared_ptr<ClientSession> find_session(std::uint64_t id);
  // Calls f(ClientSession&) for every live session (shard thread only).
  template <class F>
  void for_each_session(F&& f) {
    for (auto& [id, weak] : sessions_)
      if (auto s = weak.lock()) f(*s);
  }

  // ---- lifecycle ----
  // Opens the listening sockets (shard 0 only), or takes the ones a predecessor handed over;
  // throws std::runtime_error naming the port and, when it is taken, the process that holds it.
  void listen(const ProxySettings& cfg, const HandoverSockets& inherited);
  // The open listening sockets, to hand over to a successor (shard 0; fixed once listening).
  HandoverSockets listening_sockets() const;
  void start();            // runs the io_context on a new thread (not accepting yet)
  void start_accepting();  // accepts clients from listen()'s sockets
  void join();
  // Close the listening sockets (shard 0); sessions go on.
  void stop_accepting();
  // Stop accepting; sessions end at their next transaction boundary.
  void begin_shutdown();
  // End every session now (shutdown_timeout passed).
  void terminate_all();
  std::size_t session_count() const { return sessions_.size(); }
  // Clients living on (or being handed to) this shard; read from the accepting thread.
  int live_clients() const { return live_clients_.load(std::memory_order_relaxed); }

 private:
  // One loop for TCP and Unix listeners (instantiated in shard.cpp only).
  template <class Acceptor>
  awaitable<void> accept_loop(Acceptor& acceptor);
  awaitable<void> maintenance();
  void start_session(std::shared_ptr<class Stream> stream);

  DataPlane& plane_;
  asio::io_context io_{1};
  ShardContext context_;  // after io_: it keeps io_'s executor
  Gate gate_;
  WarmPool warm_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ServerPool>> pools_;
  std::map<std::pair<std::string, std::string>, std::size_t>
      warm_demand_;  // most since the last switch
  std::unordered_map<std::uint64_t, std::weak_ptr<ClientSession>> sessions_;
  std::unique_ptr<tcp::acceptor> tcp_acceptor_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor_;
  std::unique_ptr<asio::steady_timer> maintenance_timer_;
  std::thread thread_;
  std::int64_t busy_ = 0;
  std::atomic<int> live_clients_{0};
};

}  // namespace pgcutover::proxy
