#include "proxy/session/cancel_registry.h"

#include "protocol/auth.h"

namespace pgcutover::proxy {

CancelRegistry::Key CancelRegistry::issue(CancelTarget target) {
  for (;;) {
    std::uint8_t raw[8];
    protocol::random_bytes(raw, sizeof raw);
    Key k;
    // A positive pid, like a real one: some clients print or compare it.
    k.pid = static_cast<std::int32_t>(
        ((std::uint32_t(raw[0]) << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) & 0x7fffffff);
    k.key = static_cast<std::int32_t>((std::uint32_t(raw[4]) << 24) | (raw[5] << 16) |
                                      (raw[6] << 8) | raw[7]);
    if (k.pid == 0) continue;
    std::lock_guard lock(mutex_);
    if (entries_.emplace(pack(k), target).second) return k;
  }
}

CancelRegistry::Key CancelRegistry::issue(CancelTarget target, std::int32_t pid) {
  for (;;) {
    std::uint8_t raw[4];
    protocol::random_bytes(raw, sizeof raw);
    Key k;
    k.pid = pid;
    k.key = static_cast<std::int32_t>((std::uint32_t(raw[0]) << 24) | (raw[1] << 16) |
                                      (raw[2] << 8) | raw[3]);
    std::lock_guard lock(mutex_);
    if (entries_.emplace(pack(k), target).second) return k;
  }
}

void CancelRegistry::remove(Key key) {
  std::lock_guard lock(mutex_);
  entries_.erase(pack(key));
}

std::optional<CancelTarget> CancelRegistry::find(Key key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(pack(key));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

bool CancelRegistry::issued_own_pid(std::int32_t pid) const {
  constexpr std::int32_t kLinuxPidLimit = 1 << 22;  // PID_MAX_LIMIT on 64-bit Linux
  if (pid <= kLinuxPidLimit) return false;
  std::lock_guard lock(mutex_);
  for (const auto& [packed, target] : entries_) {
    if (static_cast<std::int32_t>(packed >> 32) == pid) return true;
  }
  return false;
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace pgcutover::proxy
