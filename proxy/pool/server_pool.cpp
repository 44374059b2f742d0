#include "proxy/pool/server_pool.h"

#include "common/log.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {

ServerPool::ServerPool(ShardContext& shard, std::string database, std::string user)
    : shard_(shard),
      database_(std::move(database)),
      user_(std::move(user)),
      route_(&shard_.routes().for_database(database_)) {}

std::size_t ServerPool::idle_on(const std::string& backend) const {
  for (std::size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i]->endpoint->backend.name == backend) return i;
  }
  return idle_.size();
}

std::size_t ServerPool::least_loaded_idle() const {
  std::size_t best = idle_.size();
  int best_load = 0;
  bool best_up = false;
  for (std::size_t i = idle_.size(); i-- > 0;) {  // most recently used first: it wins ties
    const std::string& name = idle_[i]->endpoint->backend.name;
    bool up = reader_is_up(name);
    int n = load_.get(name);
    if (best == idle_.size() || (up && !best_up) || (up == best_up && n < best_load)) {
      best = i;
      best_load = n;
      best_up = up;
    }
  }
  return best;
}

void ServerPool::count_assigned(const ServerConnection& c, int delta) {
  if (balanced()) load_.add(c.endpoint->backend.name, delta);
}

ServerPool::~ServerPool() {
  *alive_ = false;
  stats().servers[static_cast<int>(ServerState::kIdle)].fetch_sub(
      static_cast<std::int64_t>(idle_.size()), std::memory_order_relaxed);
}

bool ServerPool::usable(ServerConnection& c, Clock::time_point now) const {
  const auto& cfg = shard_.settings()->config.proxy;
  if (c.epoch != shard_.epoch()) return false;
  if (cfg.server_lifetime.count() > 0 && now - c.created > cfg.server_lifetime) return false;
  if (!c.in.empty()) return false;
  // Health check before reuse: an idle server has nothing to say; data or EOF means it was
  // terminated (admin command, restart, server-side timeout). Like PgBouncer's
  // server_check_delay, a connection released moments ago is not checked (one syscall saved
  // per transaction on the hot path); the maintenance pass checks every idle one each second.
  if (now - c.last_used > std::chrono::seconds(1) && c.stream->readable_or_closed()) return false;
  return true;
}

void ServerPool::close_conn(std::unique_ptr<ServerConnection> conn, const char* why, bool later) {
  if (balanced()) opened_.add(conn->endpoint->backend.name, -1);
  log::debug("server_closed", {{"server_id", std::to_string(conn->id)}, {"reason", why}});
  if (later) {
    close_later(shard_.executor(), std::move(conn));
  } else {
    conn.reset();
  }
  --open_;
  wake_one_for_slot();
}

// A flip's old connections are quiet (the controller's fence spared them), but closing them
// makes their backends exit at the very moment the held clients run their first statements on
// the new side, and on a small machine those exits take the CPU the clients need. So they go
// a second later: the pool stops counting them at once, only the sockets wait.
void ServerPool::close_later(const asio::any_io_executor& executor,
                             std::unique_ptr<ServerConnection> conn) {
  auto timer = std::make_shared<asio::steady_timer>(executor, std::chrono::seconds(1));
  timer->async_wait([timer, c = std::shared_ptr<ServerConnection>(std::move(conn))](
                        const error_code&) mutable { c.reset(); });
}

void ServerPool::wake_one_for_slot() {
  if (waiters_.empty()) return;
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->slot_freed = true;
  w->served = true;
  w->timer->cancel();
}

awaitable<ServerPool::Lease> ServerPool::acquire() {
  auto now = Clock::now();
  // No copy of the settings pointer here: its reference count is shared by every shard, and
  // this runs once per transaction.
  const auto deadline = now + shard_.settings()->config.proxy.query_wait_timeout;
  bool counted_wait = false;
  std::size_t reader_attempts = 0;
  for (;;) {
    now = Clock::now();
    while (!idle_.empty()) {
      std::size_t at = idle_.size() - 1;
      if (balanced()) {
        // The least loaded healthy reader gets the query: one of its idle connections, else a
        // new one when the pool may grow, else any idle one rather than a wait.
        at = idle_on(pick_reader(route_->readers, load_)->backend.name);
        if (at == idle_.size()) {
          if (open_ < shard_.pool_size()) break;
          at = least_loaded_idle();
        }
      }
      std::unique_ptr<ServerConnection> c = std::move(idle_[at]);
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(at));
      stats().servers[static_cast<int>(ServerState::kIdle)].fetch_sub(1, std::memory_order_relaxed);
      if (balanced() && !reader_is_up(c->endpoint->backend.name)) {
        // Only idle connections to a reader taken out are left: make room for a healthy one.
        close_conn(std::move(c), "reader down");
        continue;
      }
      if (!usable(*c, now)) {
        close_conn(std::move(c), "unusable at checkout");
        continue;
      }
      stats().servers[static_cast<int>(ServerState::kActive)].fetch_add(1,
                                                                        std::memory_order_relaxed);
      if (!welcome_) welcome_ = c->initial_reported;
      count_assigned(*c, +1);
      co_return Lease{std::move(c), {}};
    }
    if (open_ < shard_.pool_size()) {
      ++open_;
      // A new connection goes to the reader with the fewest in this pool, so that the pool's
      // connections stay split evenly and least_loaded_idle() has a choice.
      auto endpoint = balanced() ? pick_reader(route_->readers, opened_) : route_->endpoint;
      if (balanced()) opened_.add(endpoint->backend.name, +1);
      std::uint64_t epoch = shard_.epoch();
      auto alive = alive_;
      stats().servers[static_cast<int>(ServerState::kLogin)].fetch_add(1,
                                                                       std::memory_order_relaxed);
      ConnectResult r = co_await connect_server(
          endpoint, epoch, shard_.settings()->config.proxy.server_connect_timeout,
          shard_.settings()->server_limits);
      stats().servers[static_cast<int>(ServerState::kLogin)].fetch_sub(1,
                                                                       std::memory_order_relaxed);
      if (!*alive) co_return Lease{nullptr, {"08006", "pool closed"}};
      if (!r.conn) {
        --open_;
        if (balanced()) opened_.add(endpoint->backend.name, -1);
        if (balanced()) {
          // The failed attempt is the health check: take the reader out and try another one
          // while a healthy one is left, so the client does not see it.
          mark_reader_down(endpoint->backend.name, r.error.message);
          if (++reader_attempts < route_->readers.size() &&
              reader_is_up(pick_reader(route_->readers, opened_)->backend.name)) {
            continue;
          }
        }
        wake_one_for_slot();  // let the next waiter try (it may succeed, or report its own error)
        co_return Lease{nullptr, std::move(r.error)};
      }
      if (balanced()) mark_reader_up(endpoint->backend.name);
      if (!welcome_ && r.conn->epoch == shard_.epoch()) welcome_ = r.conn->initial_reported;
      stats().servers[static_cast<int>(ServerState::kActive)].fetch_add(1,
                                                                        std::memory_order_relaxed);
      count_assigned(*r.conn, +1);
      co_return Lease{std::move(r.conn), {}};
    }
    if (now >= deadline) break;
    if (!counted_wait) {
      stats().pool_waits_total.fetch_add(1, std::memory_order_relaxed);
      counted_wait = true;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_at(deadline);
    Waiter w{&timer, nullptr};
    auto it = waiters_.insert(waiters_.end(), &w);
    auto alive = alive_;
    co_await timer.async_wait(use_nothrow);
    if (!*alive) co_return Lease{nullptr, {"08006", "pool closed"}};
    if (!w.served) waiters_.erase(it);
    if (w.conn) {
      if (!welcome_) welcome_ = w.conn->initial_reported;
      count_assigned(*w.conn, +1);
      co_return Lease{std::move(w.conn), {}};
    }
    // slot_freed: capacity to connect; loop. Timer expired: loop once more, then give up.
  }
  stats().pool_wait_timeouts_total.fetch_add(1, std::memory_order_relaxed);
  co_return Lease{
      nullptr,
      {"57014", "canceling statement: no server connection available within query_wait_timeout"}};
}

void ServerPool::release(std::unique_ptr<ServerConnection> conn, Return how) {
  if (!conn) {
    log::error("bug_release_null_server", {{"pool_user", user_}});
    return;
  }
  stats().servers[static_cast<int>(ServerState::kActive)].fetch_sub(1, std::memory_order_relaxed);
  count_assigned(*conn, -1);
  if (how == Return::kClose || conn->epoch != shard_.epoch() || !conn->in.empty() ||
      conn->cancel_sent || conn->statements_stale || shard_.stopping()) {
    close_conn(std::move(conn), how == Return::kClose ? "not reusable" : "stale");
    return;
  }
  conn->last_used = Clock::now();
  if (!waiters_.empty()) {
    // Hand it straight to the longest waiter: FIFO fairness, no idle round trip.
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->served = true;
    stats().servers[static_cast<int>(ServerState::kActive)].fetch_add(1, std::memory_order_relaxed);
    w->conn = std::move(conn);
    w->timer->cancel();
    return;
  }
  stats().servers[static_cast<int>(ServerState::kIdle)].fetch_add(1, std::memory_order_relaxed);
  idle_.push_back(std::move(conn));
}

std::shared_ptr<DesiredSettings> ServerPool::login_settings(const ParamMap& startup) {
  auto fresh = std::make_shared<DesiredSettings>();
  if (welcome_) {
    for (const auto& [name, value] : *welcome_)
      if (is_tracked_reported(name)) fresh->params[name] = value;
  }
  for (const auto& [name, value] : startup) fresh->params[name] = value;
  fresh->rekey();
  if (auto it = login_settings_.find(fresh->key); it != login_settings_.end()) {
    if (auto shared = it->second.lock()) return shared;
  }
  if (login_settings_.size() >= 256) {
    // Bounded by the distinct settings of the clients still connected.
    std::erase_if(login_settings_, [](const auto& e) { return e.second.expired(); });
  }
  fresh->interned = true;
  login_settings_[fresh->key] = fresh;
  return fresh;
}

void ServerPool::maintain(Clock::time_point now) {
  const auto& cfg = shard_.settings()->config.proxy;
  // Oldest-used first: front of the deque.
  for (auto it = idle_.begin(); it != idle_.end();) {
    ServerConnection& c = **it;
    bool idle_too_long = cfg.server_idle_timeout.count() > 0 &&
                         now - c.last_used > cfg.server_idle_timeout &&
                         open_ > shard_.min_pool_size();
    bool too_old = cfg.server_lifetime.count() > 0 && now - c.created > cfg.server_lifetime;
    bool broken = c.stream->readable_or_closed();
    bool reader_down = balanced() && !reader_is_up(c.endpoint->backend.name);
    if (idle_too_long || too_old || broken || reader_down || c.epoch != shard_.epoch()) {
      std::unique_ptr<ServerConnection> dead = std::move(*it);
      it = idle_.erase(it);
      stats().servers[static_cast<int>(ServerState::kIdle)].fetch_sub(1, std::memory_order_relaxed);
      bool stale = !(idle_too_long || too_old || broken || reader_down);
      close_conn(std::move(dead),
                 broken          ? "closed by server"
                 : idle_too_long ? "idle timeout"
                 : too_old       ? "lifetime"
                 : reader_down   ? "reader down"
                                 : "stale epoch",
                 /*later=*/stale);
    } else {
      ++it;
    }
  }
  while (open_ < shard_.min_pool_size()) {
    ++open_;
    asio::co_spawn(shard_.executor(), open_spare(), asio::detached);
  }
}

awaitable<void> ServerPool::open_spare() {
  auto settings = shard_.settings();
  auto alive = alive_;
  stats().servers[static_cast<int>(ServerState::kLogin)].fetch_add(1, std::memory_order_relaxed);
  auto endpoint = balanced() ? pick_reader(route_->readers, opened_) : route_->endpoint;
  if (balanced()) opened_.add(endpoint->backend.name, +1);
  ConnectResult r = co_await connect_server(endpoint, shard_.epoch(),
                                            settings->config.proxy.server_connect_timeout,
                                            settings->server_limits);
  stats().servers[static_cast<int>(ServerState::kLogin)].fetch_sub(1, std::memory_order_relaxed);
  if (!*alive) co_return;
  if (!r.conn) {
    --open_;
    if (balanced()) {
      opened_.add(endpoint->backend.name, -1);
      mark_reader_down(endpoint->backend.name, r.error.message);
    }
    co_return;
  }
  if (!welcome_ && r.conn->epoch == shard_.epoch()) welcome_ = r.conn->initial_reported;
  stats().servers[static_cast<int>(ServerState::kActive)].fetch_add(1, std::memory_order_relaxed);
  count_assigned(*r.conn, +1);  // release() counts it back
  release(std::move(r.conn), Return::kReuse);
}

void ServerPool::adopt(std::unique_ptr<ServerConnection> conn) {
  ++open_;
  stats().servers[static_cast<int>(ServerState::kActive)].fetch_add(1, std::memory_order_relaxed);
  release(std::move(conn), Return::kReuse);
}

void ServerPool::on_retarget() {
  route_ = &shard_.routes().for_database(database_);
  welcome_.reset();
  login_settings_.clear();  // made from the old welcome parameters
  maintain(Clock::now());
}

}  // namespace pgcutover::proxy
