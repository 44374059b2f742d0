// The cutover engine's reports (CutoverObserver) as Prometheus metrics: state, active backend,
// epoch, read-only mode, commands by outcome, pause and flip durations.
#pragma once

#include "proxy/cutover/cutover_engine.h"
#include "proxy/telemetry/metrics.h"

namespace pgcutover::proxy {

class CutoverMetrics : public CutoverObserver {
 public:
  explicit CutoverMetrics(Metrics& metrics) : metrics_(metrics) {}

  void started(const std::vector<std::string>& backends, const std::string& active,
               std::uint64_t epoch) override;
  void state_changed(CutoverState state) override { metrics_.set_cutover_state(state); }
  void active_changed(const std::string& backend, std::uint64_t epoch) override;
  void epoch_changed(std::uint64_t epoch) override;
  void read_only_changed(bool enabled) override { metrics_.read_only().Set(enabled ? 1 : 0); }
  void command_finished(std::string_view command, std::string_view outcome) override {
    metrics_.count_command(command, outcome);
  }
  void pause_ended(Millis gate_closed_for, const ClientWaits& waits) override;
  void flip_done(Millis flip_took) override;

 private:
  Metrics& metrics_;
};

}  // namespace pgcutover::proxy
