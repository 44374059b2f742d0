#include "proxy/runtime/shard.h"

#include "proxy/net/port_holder.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <filesystem>

#include "common/log.h"
#include "proxy/net/stream.h"
#include "proxy/runtime/data_plane.h"
#include "proxy/session/client_session.h"

namespace pgcutover::proxy {
namespace {
std::atomic<std::uint64_t> next_session_id{1};
}

Shard::Shard(DataPlane& plane, int index, int shard_count, std::shared_ptr<const Settings> settings,
             std::shared_ptr<const RouteTable> routes, std::uint64_t epoch)
    : plane_(plane),
      context_(io_.get_executor(), index, shard_count, std::move(settings), std::move(routes),
               epoch) {}

Shard::~Shard() {
  join();
}

CancelRegistry& Shard::cancels() {
  return plane_.cancels();
}
void Shard::route_cancel(CancelRegistry::Key key) {
  plane_.route_cancel(key);
}
std::atomic<int>& Shard::client_count() {
  return plane_.client_count();
}
bool Shard::read_only() const {
  return plane_.read_only();
}

void Shard::fenced_write_seen() {
  plane_.fenced_write_seen();
}

ServerPool& Shard::pool(const std::string& database, const std::string& user) {
  auto& p = pools_[{database, user}];
  if (!p) p = std::make_unique<ServerPool>(context_, database, user);
  return *p;
}

std::size_t Shard::warm_target() {
  // The most each pool had at any prewarm since the last switch: a second prewarm during the
  // same flip (after lifting the destination's fence) runs once the fence has ended the old
  // side's connections, and sizing it from what is left would warm one connection where the
  // held clients need several.
  std::size_t n = 0;
  for (const auto& [key, pool] : pools_) {
    if (!pool->on_default_route()) continue;
    std::size_t& k = warm_demand_[key];
    k = std::max(k, std::min(pool->open_count(), pool_size()));
    n += k;
  }
  return n;
}

void Shard::retarget(std::shared_ptr<const RouteTable> routes, std::uint64_t epoch) {
  bool moved = context_.epoch() != epoch;  // a reload keeps the epoch: nothing to hand over
  // Each default-route pool's size before the switch: what it gets warm. Prewarm opens
  // connections to the side's own backend only; route pools (replicas) reconnect themselves.
  // What each pool had when the prewarm was sized counts too: the fence ends the old side's
  // server connections during the pause, so a pool may have none left by now and its held
  // clients would each open one after the gate reopens.
  std::vector<std::size_t> had;
  for (auto& [key, pool] : pools_) {
    std::size_t now = pool->open_count();
    if (auto it = warm_demand_.find(key); it != warm_demand_.end()) now = std::max(now, it->second);
    had.push_back(pool->on_default_route() ? std::min(now, pool_size()) : 0);
  }
  context_.set_side(std::move(routes), epoch);
  for (auto& [key, pool] : pools_) pool->on_retarget();
  if (!moved) return;
  warm_demand_.clear();
  auto warm = warm_.take(endpoint()->backend.name);
  std::size_t next = 0;
  std::size_t i = 0;
  for (auto& [key, pool] : pools_) {
    for (std::size_t k = 0; k < had[i] && next < warm.size(); ++k) {
      warm[next]->epoch = epoch;
      pool->adopt(std::move(warm[next++]));
    }
    ++i;
  }
  if (!warm.empty()) {
    log::info("prewarm_used", {{"backend", endpoint()->backend.name},
                               {"adopted", std::to_string(next)},
                               {"closed", std::to_string(warm.size() - next)}});
  }
}

void Shard::add_session(const std::shared_ptr<ClientSession>& session) {
  sessions_[session->id()] = session;
}
std::shared_ptr<ClientSession> Shard::find_session(std::uint64_t id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.lock();
}

void Shard::listen(const ProxySettings& cfg, const HandoverSockets& inherited) {
  error_code ec;
  auto address = asio::ip::make_address(cfg.listen_addr, ec);
  if (ec) throw std::runtime_error("proxy.listen_addr " + cfg.listen_addr + ": " + ec.message());
  tcp::endpoint ep(address, cfg.listen_port);
  tcp_acceptor_ = std::make_unique<tcp::acceptor>(io_);
  if (inherited.client_tcp >= 0) {
    // Handed over by the previous process, already listening: its accept queue never closed.
    tcp_acceptor_->assign(ep.protocol(), inherited.client_tcp);
    if (inherited.client_unix >= 0) {
      unix_acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
      unix_acceptor_->assign(asio::local::stream_protocol(), inherited.client_unix);
    }
    return;
  }
  tcp_acceptor_->open(ep.protocol());
  // SO_REUSEADDR only (a socket in TIME_WAIT must not keep a restart from binding), never
  // SO_REUSEPORT: with it, any process of this user that also asks for it joins the port and
  // the kernel splits new connections between the two, so a second proxy (a copied config,
  // another flip state) would silently send part of the application's writes to the other
  // database. One socket, owned by this process, taken or refused.
  tcp_acceptor_->set_option(tcp::acceptor::reuse_address(true));
  tcp_acceptor_->bind(ep, ec);
  if (ec == asio::error::address_in_use) {
    std::string holder = describe_port_holder(cfg.listen_port);
    throw std::runtime_error(
        "port " + std::to_string(cfg.listen_port) + " on " + cfg.listen_addr +
        " is already in use" + (holder.empty() ? "" : " by " + holder) +
        ": two proxies on one port would split the application's writes between two "
        "databases; stop the other process, set another proxy.listen_port, or, to replace a "
        "running proxy of this configuration, start this one with --handover");
  }
  if (ec)
    throw std::runtime_error("cannot listen on " + cfg.listen_addr + ":" +
                             std::to_string(cfg.listen_port) + ": " + ec.message());
  tcp_acceptor_->listen(asio::socket_base::max_listen_connections);
  if (index() == 0 && !cfg.unix_socket_dir.empty()) {
    // Unix sockets cannot share a path between acceptors: shard 0 takes them all.
    std::string path = cfg.unix_socket_dir + "/.s.PGSQL." + std::to_string(cfg.listen_port);
    std::filesystem::remove(path, ec);
    unix_acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
    asio::local::stream_protocol::endpoint uep(path);
    unix_acceptor_->open(uep.protocol());
    unix_acceptor_->bind(uep, ec);
    if (ec) throw std::runtime_error("cannot listen on " + path + ": " + ec.message());
    unix_acceptor_->listen(asio::socket_base::max_listen_connections);
  }
}

HandoverSockets Shard::listening_sockets() const {
  HandoverSockets out;
  if (tcp_acceptor_ && tcp_acceptor_->is_open()) out.client_tcp = tcp_acceptor_->native_handle();
  if (unix_acceptor_ && unix_acceptor_->is_open())
    out.client_unix = unix_acceptor_->native_handle();
  return out;
}

void Shard::start_accepting() {
  if (tcp_acceptor_) asio::co_spawn(io_, accept_loop(*tcp_acceptor_), asio::detached);
  if (unix_acceptor_) asio::co_spawn(io_, accept_loop(*unix_acceptor_), asio::detached);
}

void Shard::start() {
  maintenance_timer_ = std::make_unique<asio::steady_timer>(io_);
  asio::co_spawn(io_, maintenance(), asio::detached);
  thread_ = std::thread([this] {
    use_own_stats();
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
}

void Shard::join() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

void Shard::start_session(std::shared_ptr<Stream> stream) {
  plane_.client_count().fetch_add(1, std::memory_order_relaxed);
  live_clients_.fetch_add(1, std::memory_order_relaxed);
  auto session =
      std::make_shared<ClientSession>(*this, std::move(stream), next_session_id.fetch_add(1));
  add_session(session);
  asio::co_spawn(io_, session->run(), asio::detached);
}

void Shard::session_ended(std::uint64_t id) {
  if (sessions_.erase(id)) live_clients_.fetch_sub(1, std::memory_order_relaxed);
}

// Only the listening shard runs this. Each connection is accepted straight into the
// io_context of the shard with the fewest clients (ties go round the shards), which then
// starts the session on its own thread: the spread SO_REUSEPORT gave, without sharing the port.
template <class Acceptor>
awaitable<void> Shard::accept_loop(Acceptor& acceptor) {
  std::size_t rotation = 0;
  while (!context_.stopping()) {
    Shard& to = plane_.least_loaded_shard(rotation++);
    auto [ec, socket] = co_await acceptor.async_accept(to.io(), use_nothrow);
    if (context_.stopping()) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: log, back off a little, keep serving the existing clients.
      log::warn("accept_failed", {{"shard", std::to_string(index())}, {"error", ec.message()}});
      asio::steady_timer t(io_, asio::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    // Counted now, on this thread, so the next choice already sees it.
    to.live_clients_.fetch_add(1, std::memory_order_relaxed);
    asio::post(to.io(), [&to, s = std::move(socket)]() mutable {
      to.live_clients_.fetch_sub(1, std::memory_order_relaxed);
      if (to.context_.stopping()) return;  // shutting down: the socket closes here
      to.start_session(std::make_shared<Stream>(std::move(s)));
    });
  }
}

awaitable<void> Shard::maintenance() {
  while (!context_.stopping()) {
    maintenance_timer_->expires_after(asio::chrono::seconds(1));
    co_await maintenance_timer_->async_wait(use_nothrow);
    if (context_.stopping()) break;
    auto now = Clock::now();
    for (auto& [key, pool] : pools_) pool->maintain(now);
    warm_.maintain(now);
  }
}

void Shard::stop_accepting() {
  // release() then close: after a hand-over the successor holds the same listening sockets,
  // and only release() takes them out of this io_context's epoll set (a plain close() would
  // leave the shared socket registered here, waking this process for the successor's clients).
  auto stop_listening = [](auto& acceptor) {
    error_code ignored;
    if (!acceptor || !acceptor->is_open()) return;
    int fd = acceptor->release(ignored);
    if (fd >= 0) ::close(fd);
  };
  stop_listening(tcp_acceptor_);
  stop_listening(unix_acceptor_);
}

void Shard::begin_shutdown() {
  context_.set_stopping();
  stop_accepting();
  if (maintenance_timer_) maintenance_timer_->cancel();
  gate_.open();  // held clients must be able to finish or be told
  std::vector<std::shared_ptr<ClientSession>> live;
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->request_shutdown();
}

void Shard::terminate_all() {
  std::vector<std::shared_ptr<ClientSession>> live;
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->terminate({EndReason::kShutdown, {}, {}});
}

}  // namespace pgcutover::proxy
