// Prewarm: server connections to a flip's target, opened (TCP, TLS, authentication)
// before the pause, so that the held clients do not pay for connection set-up after the flip.
// One per shard, touched only on its thread. Bounded: a prewarm opens at most what the shard's
// pools have open now (never more than their size), and the connections are closed when no
// flip to that backend comes within cutover.prewarm_ttl.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/pool/server_connection.h"

namespace pgcutover::proxy {

class WarmPool {
 public:
  // Replaces whatever was warm by `conns` (connections to `backend`), kept until `expires`.
  void fill(std::string backend, std::vector<std::unique_ptr<ServerConnection>> conns,
            Clock::time_point expires);
  // The warm connections when they go to `backend`; anything warm for another backend is
  // closed, and so is any that logged in with default_transaction_read_only on (a fence).
  std::vector<std::unique_ptr<ServerConnection>> take(const std::string& backend);
  // Closes them once expired, and any the server closed meanwhile.
  void maintain(Clock::time_point now);
  std::size_t size() const { return conns_.size(); }

 private:
  std::string backend_;
  Clock::time_point expires_{};
  std::vector<std::unique_ptr<ServerConnection>> conns_;
};

}  // namespace pgcutover::proxy
