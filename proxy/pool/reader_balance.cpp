#include "proxy/pool/reader_balance.h"

#include <mutex>

#include "common/log.h"

namespace pgcutover::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::mutex health_mutex;
std::map<std::string, SteadyClock::time_point, std::less<>>& down_until() {
  static std::map<std::string, SteadyClock::time_point, std::less<>> m;
  return m;
}

}  // namespace

void mark_reader_down(const std::string& backend, std::string_view why) {
  bool was_up = false;
  {
    std::lock_guard lock(health_mutex);
    auto [it, fresh] = down_until().try_emplace(backend);
    was_up = fresh || it->second <= SteadyClock::now();
    it->second = SteadyClock::now() + kReaderDownFor;
  }
  if (was_up) {
    log::warn("reader_down", {{"backend", backend},
                              {"error", std::string(why)},
                              {"action", "its share goes to the other readers; retried in " +
                                             std::to_string(kReaderDownFor.count()) + " s"}});
  }
}

void mark_reader_up(const std::string& backend) {
  bool was_down = false;
  {
    std::lock_guard lock(health_mutex);
    auto it = down_until().find(backend);
    if (it == down_until().end()) return;
    was_down = true;
    down_until().erase(it);
  }
  if (was_down) log::info("reader_up", {{"backend", backend}});
}

bool reader_is_up(const std::string& backend) {
  std::lock_guard lock(health_mutex);
  auto it = down_until().find(backend);
  return it == down_until().end() || it->second <= SteadyClock::now();
}

void ReaderLoad::add(const std::string& backend, int delta) {
  int& n = outstanding_[backend];
  n = std::max(0, n + delta);  // a connection of an older route table may come back late
}

int ReaderLoad::get(const std::string& backend) const {
  auto it = outstanding_.find(backend);
  return it == outstanding_.end() ? 0 : it->second;
}

const std::shared_ptr<const BackendEndpoint>& pick_reader(
    const std::vector<std::shared_ptr<const BackendEndpoint>>& readers, ReaderLoad& load) {
  const std::size_t n = readers.size(), start = load.next_turn() % n;
  const std::shared_ptr<const BackendEndpoint>* best = nullptr;
  const std::shared_ptr<const BackendEndpoint>* best_any = nullptr;
  int best_load = 0, best_any_load = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = readers[(start + i) % n];
    int outstanding = load.get(r->backend.name);
    if (!best_any || outstanding < best_any_load) {
      best_any = &r;
      best_any_load = outstanding;
    }
    if (!reader_is_up(r->backend.name)) continue;
    if (!best || outstanding < best_load) {
      best = &r;
      best_load = outstanding;
    }
  }
  return best ? *best : *best_any;
}

}  // namespace pgcutover::proxy
