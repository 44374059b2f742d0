#include "proxy/telemetry/held_waits.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/log.h"

namespace pgcutover::proxy {

void HeldWaits::begin() {
  std::lock_guard lock(mu_);
  waiting_.clear();
  waits_ms_.clear();
  held_ = 0;
}

void HeldWaits::held(std::uint64_t session, Clock::time_point since) {
  std::lock_guard lock(mu_);
  if (waiting_.emplace(session, since).second) ++held_;
}

void HeldWaits::answered(std::uint64_t session, Clock::time_point since) {
  auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (waiting_.erase(session) == 0) return;  // from an earlier pause: not this one's
    waits_ms_.push_back(std::chrono::duration<double, std::milli>(now - since).count());
  }
  cv_.notify_all();
}

void HeldWaits::forget(std::uint64_t session) {
  {
    std::lock_guard lock(mu_);
    if (waiting_.erase(session) == 0) return;
    --held_;
  }
  cv_.notify_all();
}

ClientWaits HeldWaits::summary(std::chrono::milliseconds settle) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, settle, [this] { return waiting_.empty(); });
  ClientWaits w;
  w.held = held_;
  w.answered = static_cast<int>(waits_ms_.size());
  std::vector<double> all = waits_ms_;
  auto now = Clock::now();
  for (const auto& [session, since] : waiting_)
    all.push_back(std::chrono::duration<double, std::milli>(now - since).count());
  if (all.empty()) return w;
  std::sort(all.begin(), all.end());
  w.worst_ms = all.back();
  // Nearest rank: the smallest wait that at least 99% of the clients did not exceed.
  auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(all.size())));
  w.p99_ms = all[std::max<std::size_t>(rank, 1) - 1];
  return w;
}

HeldWaits& held_waits() {
  static HeldWaits recorder;
  return recorder;
}

namespace {
std::string ms_since(HeldWaits::Clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(HeldWaits::Clock::now() - t).count());
}
}  // namespace

void log_held_attached(std::uint64_t session, std::uint64_t server_id,
                       HeldWaits::Clock::time_point released) {
  if (released == HeldWaits::Clock::time_point{} || log::level() > log::Level::kDebug) return;
  log::debug("held_client_attached", {{"session", std::to_string(session)},
                                      {"server_id", std::to_string(server_id)},
                                      {"after_gate_ms", ms_since(released)}});
}

void log_held_answered(std::uint64_t session, HeldWaits::Clock::time_point since,
                       HeldWaits::Clock::time_point released) {
  if (log::level() > log::Level::kDebug) return;
  bool was_released = released != HeldWaits::Clock::time_point{};
  log::debug("held_client_answered",
             {{"session", std::to_string(session)},
              {"wait_ms", ms_since(since)},
              {"after_gate_ms", was_released ? ms_since(released) : std::string("-")}});
}

}  // namespace pgcutover::proxy
