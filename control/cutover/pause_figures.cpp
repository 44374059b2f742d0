#include "control/cutover/pause_figures.h"

#include <algorithm>

namespace pgcutover::control {

void PauseFigures::reopened(const ProxyAnswer& x) {
  if (!x.ok) return;
  if (!last_reopened_ || x.answered_at > *last_reopened_) last_reopened_ = x.answered_at;
  if (!x.body.contains("client_wait_ms")) client_waits_reported_ = false;
  clients_held_ += x.clients_held;
  if (x.client_wait_worst_ms)
    client_wait_worst_ms_ = std::max(client_wait_worst_ms_, *x.client_wait_worst_ms);
}

std::string PauseFigures::report(boost::json::object& rep) const {
  if (!pause_sent_ || !last_reopened_) return {};
  const double span =
      std::chrono::duration<double, std::milli>(*last_reopened_ - *pause_sent_).count();
  rep["controller_span_ms"] = span;
  if (!client_waits_reported_) {
    rep["write_pause_ms"] = span;
    return "write pause: " + std::to_string(static_cast<long>(span)) +
           " ms (PAUSE sent -> last gate reopened; a proxy too old to measure its clients' "
           "waits)";
  }
  rep["write_pause_ms"] = client_wait_worst_ms_;
  rep["clients_held"] = clients_held_;
  return "write pause: " + std::to_string(static_cast<long>(client_wait_worst_ms_ + 0.5)) +
         " ms (the longest any of the " + std::to_string(clients_held_) +
         " held clients waited for its answer); controller span " +
         std::to_string(static_cast<long>(span)) + " ms (PAUSE sent -> last gate reopened)";
}

}  // namespace pgcutover::control
