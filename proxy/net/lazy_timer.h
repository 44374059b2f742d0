// A steady_timer made on first use. A client session keeps several for rare events (a probe
// ending, a write completing while the server already answered, the idle timeout); made eagerly
// they were a quarter of an idle client's memory (docs/benchmarks.md, idle clients).
#pragma once

#include <memory>

#include "proxy/net/asio.h"

namespace pgcutover::proxy {

class LazyTimer {
 public:
  asio::steady_timer& get(const asio::any_io_executor& ex) {
    if (!timer_) timer_ = std::make_unique<asio::steady_timer>(ex);
    return *timer_;
  }
  // No timer yet: nobody waits on it, nothing to cancel.
  void cancel() {
    if (timer_) timer_->cancel();
  }

 private:
  std::unique_ptr<asio::steady_timer> timer_;
};

}  // namespace pgcutover::proxy
