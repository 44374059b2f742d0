#include "proxy/telemetry/cutover_metrics.h"

namespace pgcutover::proxy {
namespace {

double seconds(Millis d) {
  return static_cast<double>(d.count()) / 1000.0;
}

}  // namespace

void CutoverMetrics::started(const std::vector<std::string>& backends, const std::string& active,
                             std::uint64_t epoch) {
  for (const auto& b : backends) metrics_.add_backend(b);
  active_changed(active, epoch);
  metrics_.set_cutover_state(CutoverState::kRunning);
  metrics_.read_only().Set(0);
}

void CutoverMetrics::active_changed(const std::string& backend, std::uint64_t epoch) {
  metrics_.set_active_backend(backend);
  epoch_changed(epoch);
}

void CutoverMetrics::epoch_changed(std::uint64_t epoch) {
  metrics_.epoch().Set(static_cast<double>(epoch));
}

void CutoverMetrics::pause_ended(Millis gate_closed_for, const ClientWaits& waits) {
  metrics_.pause_duration().Observe(seconds(gate_closed_for));
  metrics_.pause_client_wait_worst().Set(waits.worst_ms / 1000.0);
  metrics_.pause_client_wait_p99().Set(waits.p99_ms / 1000.0);
}

void CutoverMetrics::flip_done(Millis flip_took) {
  metrics_.flip_duration().Observe(seconds(flip_took));
}

}  // namespace pgcutover::proxy
