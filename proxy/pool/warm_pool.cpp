#include "proxy/pool/warm_pool.h"

#include "common/log.h"

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
  // A role setting is read once, at login: a connection opened while the backend's roles were
  // still fenced (a revert prewarms the old source before the fence is lifted) would keep
  // default_transaction_read_only = on for its life. PostgreSQL reports that setting
  // (ParameterStatus, 14 and later): such connections are closed, not handed to the pools.
  std::size_t before = out.size();
  std::erase_if(out, [](const std::unique_ptr<ServerConnection>& c) {
    auto it = c->initial_reported.find("default_transaction_read_only");
    return it != c->initial_reported.end() && it->second == "on";
  });
  if (out.size() != before) {
    log::info("prewarm_discarded", {{"backend", backend},
                                    {"connections", std::to_string(before - out.size())},
                                    {"reason", "logged in read-only (fenced at prewarm time)"}});
  }
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
