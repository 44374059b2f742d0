// Closes a stream when a deadline passes, so that whatever is awaiting on it completes with an
// error: the way every bounded wait of the data plane is enforced without awaitable operators.
#pragma once

#include <memory>

#include "proxy/net/asio.h"
#include "proxy/net/stream.h"

namespace pgcutover::proxy {

class StreamDeadline {
 public:
  StreamDeadline(asio::any_io_executor ex, std::weak_ptr<Stream> stream,
                 asio::chrono::milliseconds after)
      : timer_(ex), fired_(std::make_shared<bool>(false)) {
    timer_.expires_after(after);
    timer_.async_wait([stream = std::move(stream), fired = fired_](error_code ec) {
      if (ec) return;
      *fired = true;
      if (auto s = stream.lock()) s->close();
    });
  }
  ~StreamDeadline() { timer_.cancel(); }
  StreamDeadline(const StreamDeadline&) = delete;
  StreamDeadline& operator=(const StreamDeadline&) = delete;
  bool fired() const { return *fired_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> fired_;
};

}  // namespace pgcutover::proxy
