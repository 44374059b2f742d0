#include "proxy/stats.h"

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
  std::size_t index = 36;
  if (sqlstate.size() == 5) {
    char c = sqlstate[0];
    if (c >= '0' && c <= '9') index = static_cast<std::size_t>(c - '0');
    if (c >= 'A' && c <= 'Z') index = 10 + static_cast<std::size_t>(c - 'A');
  }
  errors_by_class[index].fetch_add(1, std::memory_order_relaxed);
}

Stats& stats() {
  static Stats instance;
  return instance;
}

}  // namespace pgcutover::proxy
