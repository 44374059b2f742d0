#include "proxy/session/gate.h"

#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {

awaitable<bool> Gate::pass() {
  if (open_) co_return true;
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  Waiter w{&timer, false};
  auto it = waiters_.insert(waiters_.end(), &w);
  stats().held_clients.fetch_add(1, std::memory_order_relaxed);
  co_await timer.async_wait(use_nothrow);
  stats().held_clients.fetch_sub(1, std::memory_order_relaxed);
  if (!w.released) waiters_.erase(it);
  co_return open_;
}

void Gate::open() {
  open_ = true;
  for (Waiter* w : waiters_) {
    w->released = true;
    w->timer->cancel();
  }
  waiters_.clear();
}

}  // namespace pgcutover::proxy
