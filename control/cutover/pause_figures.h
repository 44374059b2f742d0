// The figures a cutover run prints about its write pause (docs/cutover.md, "Figures"): what
// the application saw, the longest any client held by a gate waited for its answer as each
// proxy measured it when its gate reopened; and the controller's span, from sending PAUSE (a
// gate closes when its PAUSE arrives, long before it is acknowledged after the drain) to the
// last acknowledgement of a command that reopened a gate. Every gate-closed span lies inside it.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "control/command/proxy_fleet.h"

namespace pgcutover::control {

class PauseFigures {
 public:
  using Clock = std::chrono::steady_clock;

  // PAUSE is being sent now (the first call counts).
  void pause_sent(Clock::time_point at) {
    if (!pause_sent_) pause_sent_ = at;
  }
  // One proxy's answer to a command that reopened its gate (a flip, or a resume that changed
  // something). Failed answers reopened nothing.
  void reopened(const ProxyAnswer& answer);
  // Adds controller_span_ms, write_pause_ms and clients_held to `report` and returns the line
  // for humans; "" (and nothing added) when the run never paused and reopened.
  std::string report(boost::json::object& report) const;

 private:
  std::optional<Clock::time_point> pause_sent_, last_reopened_;
  double client_wait_worst_ms_ = 0;
  int clients_held_ = 0;
  bool client_waits_reported_ = true;  // false: a proxy too old to measure them
};

}  // namespace pgcutover::control
