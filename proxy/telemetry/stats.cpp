#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {

std::string_view to_string(ClientState s) {
  switch (s) {
    case ClientState::kLogin:
      return "login";
    case ClientState::kIdle:
      return "idle";
    case ClientState::kWaiting:
      return "waiting";
    case ClientState::kHeld:
      return "held";
    case ClientState::kActive:
      return "active";
    case ClientState::kClosing:
      return "closing";
  }
  return "unknown";
}

std::string_view to_string(ServerState s) {
  switch (s) {
    case ServerState::kLogin:
      return "login";
    case ServerState::kIdle:
      return "idle";
    case ServerState::kActive:
      return "active";
  }
  return "unknown";
}

void Stats::count_error(std::string_view sqlstate) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return 10 + (c - 'A');
    return -1;
  };
  std::size_t index = kErrorClasses - 1;
  if (sqlstate.size() == 5) {
    int a = digit(sqlstate[0]), b = digit(sqlstate[1]);
    if (a >= 0 && b >= 0) index = static_cast<std::size_t>(a * 36 + b);
  }
  errors_by_class[index].fetch_add(1, std::memory_order_relaxed);
}

Stats& stats() {
  static Stats instance;
  return instance;
}

}  // namespace pgcutover::proxy
