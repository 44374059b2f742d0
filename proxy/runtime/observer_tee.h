// The cutover engine reports to one observer; the proxy has two listeners: the metrics, and the
// fleet agent, whose member row must follow every change of state, backend or epoch whichever
// way it came (the admin API, a fleet command, the dead-man timer).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "proxy/cutover/cutover_engine.h"

namespace pgcutover::proxy {

class ObserverTee : public CutoverObserver {
 public:
  explicit ObserverTee(CutoverObserver& first) : first_(first) {}
  // Called after a change of state, backend or epoch (from the engine's threads). Set it before
  // the engine runs commands.
  void on_change(std::function<void()> fn) { changed_ = std::move(fn); }
  // Called when the dead-man timer resumed the proxy (from the engine's timer thread).
  void on_dead_man(std::function<void()> fn) { dead_man_ = std::move(fn); }

  void started(const std::vector<std::string>& backends, const std::string& active,
               std::uint64_t epoch) override {
    first_.started(backends, active, epoch);
  }
  void state_changed(CutoverState state) override {
    first_.state_changed(state);
    poke();
  }
  void active_changed(const std::string& backend, std::uint64_t epoch) override {
    first_.active_changed(backend, epoch);
    poke();
  }
  void epoch_changed(std::uint64_t epoch) override {
    first_.epoch_changed(epoch);
    poke();
  }
  void read_only_changed(bool enabled) override { first_.read_only_changed(enabled); }
  void command_finished(std::string_view command, std::string_view outcome) override {
    first_.command_finished(command, outcome);
  }
  void pause_ended(Millis gate_closed_for, const ClientWaits& waits) override {
    first_.pause_ended(gate_closed_for, waits);
  }
  void flip_done(Millis flip_took) override { first_.flip_done(flip_took); }
  void dead_man_resumed(const std::string& backend) override {
    first_.dead_man_resumed(backend);
    if (dead_man_) dead_man_();
  }

 private:
  void poke() {
    if (changed_) changed_();
  }
  CutoverObserver& first_;
  std::function<void()> changed_;
  std::function<void()> dead_man_;
};

}  // namespace pgcutover::proxy
