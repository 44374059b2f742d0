// What the application saw of a pause: for each client held by a closed gate, the time from
// its message reaching the gate to the first byte of its answer (the wait at the gate, a
// server connection on the new side, its statement's execution). The controller's own clock
// cannot see this; the proxy can. The worst of these waits is the flip's write pause.
//
// One recorder for the process, fed by every shard: a pause is rare and only held clients
// touch it (once when held, once when answered), so a mutex costs nothing on the hot path,
// which checks one member of its own session before any call here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "proxy/cutover/cutover_engine.h"

namespace pgcutover::proxy {

class HeldWaits {
 public:
  using Clock = std::chrono::steady_clock;

  // The gate is closing: a new pause, its waits start from empty.
  void begin();
  // Client `session` reached the closed gate at `since`.
  void held(std::uint64_t session, Clock::time_point since);
  // Its first answer byte was written now.
  void answered(std::uint64_t session, Clock::time_point since);
  // It left without an answer (disconnected, ended): no wait to report.
  void forget(std::uint64_t session);
  // Waits up to `settle` for every held client to be answered, then summarises. A client
  // still unanswered counts with its wait so far (a lower bound), and `answered` < `held`.
  ClientWaits summary(std::chrono::milliseconds settle);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::uint64_t, Clock::time_point> waiting_;
  std::vector<double> waits_ms_;
  int held_ = 0;
};

// The process's recorder.
HeldWaits& held_waits();

// Debug log of one held client's wait after its gate opened (`released`): when it had a server
// connection, and when its first answer went out (what the flip benchmark reads).
void log_held_attached(std::uint64_t session, std::uint64_t server_id,
                       HeldWaits::Clock::time_point released);
void log_held_answered(std::uint64_t session, HeldWaits::Clock::time_point since,
                       HeldWaits::Clock::time_point released);

}  // namespace pgcutover::proxy
