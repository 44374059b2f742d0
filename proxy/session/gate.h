// The point where a session waits before starting a new transaction. Open while the proxy
// runs (pass() costs one branch); the cutover engine closes it to PAUSE, which holds clients
// here with their next message buffered, and opens it to resume. One per shard, used only on
// that shard's thread, so it needs no lock.
#pragma once

#include <cstddef>
#include <list>

#include "proxy/net/asio.h"

namespace pgcutover::proxy {

class Gate {
 public:
  bool is_open() const { return open_; }
  std::size_t held() const { return waiters_.size(); }

  // Returns at once when open; otherwise waits until open(). Returns whether the gate was
  // open when the wait ended.
  awaitable<bool> pass();

  void close() { open_ = false; }
  void open();

 private:
  bool open_ = true;
  struct Waiter {
    asio::steady_timer* timer;
    bool released = false;
  };
  std::list<Waiter*> waiters_;
};

}  // namespace pgcutover::proxy
