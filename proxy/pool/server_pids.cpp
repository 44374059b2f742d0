#include "proxy/pool/server_pids.h"

#include <algorithm>
#include <utility>

namespace pgcutover::proxy {

ServerPids::Entry& ServerPids::Entry::operator=(Entry&& o) noexcept {
  if (this != &o) {
    if (owner_ != nullptr) owner_->remove(id_);
    owner_ = std::exchange(o.owner_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

ServerPids::Entry::~Entry() {
  if (owner_ != nullptr) owner_->remove(id_);
}

ServerPids::Entry ServerPids::add(std::string backend, std::int32_t pid) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_id_++;
  live_.emplace(id, std::pair{std::move(backend), pid});
  return Entry(this, id);
}

std::vector<std::int32_t> ServerPids::on(const std::string& backend) const {
  std::vector<std::int32_t> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : live_)
      if (e.first == backend && e.second != 0) out.push_back(e.second);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ServerPids::remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  live_.erase(id);
}

ServerPids& server_pids() {
  static ServerPids* registry = new ServerPids;  // never destroyed: connections may outlive exit
  return *registry;
}

}  // namespace pgcutover::proxy
