#include "proxy/warm_pool.h"

#include "proxy/log.h"

namespace pgcutover::proxy {

void WarmPool::fill(std::string backend, std::vector<std::unique_ptr<ServerConnection>> conns,
                    Clock::time_point expires) {
  backend_ = std::move(backend);
  expires_ = expires;
  conns_ = std::move(conns);  // the previous ones (if any) close here
}

std::vector<std::unique_ptr<ServerConnection>> WarmPool::take(const std::string& backend) {
  std::vector<std::unique_ptr<ServerConnection>> out;
  if (backend == backend_) out.swap(conns_);
  conns_.clear();
  backend_.clear();
  return out;
}

void WarmPool::maintain(Clock::time_point now) {
  if (conns_.empty()) return;
  if (now >= expires_) {
    log::info("prewarm_expired",
              {{"backend", backend_}, {"connections", std::to_string(conns_.size())}});
    conns_.clear();
    backend_.clear();
    return;
  }
  std::erase_if(conns_, [](const std::unique_ptr<ServerConnection>& c) {
    return c->stream->readable_or_closed();
  });
}

}  // namespace pgcutover::proxy
