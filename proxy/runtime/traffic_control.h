// The cutover engine's view of the real data plane: gate, in-flight count, blockers, cancel,
// retarget and prewarm, applied to every shard by posting to its thread. The engine calls
// these from an admin worker thread; calls that must be complete before the engine goes on
// (closing the gates, listing blockers) wait for every shard to have run them.
#pragma once

#include "proxy/cutover/cutover_engine.h"

namespace pgcutover::proxy {

class DataPlane;

class ShardTrafficControl : public TrafficControl {
 public:
  explicit ShardTrafficControl(DataPlane& plane) : plane_(plane) {}

  void close_gate() override;
  void open_gate() override;
  int transactions_in_flight() override;
  int held_clients() override;
  int pinned_sessions() override;
  std::vector<ClientInfo> blockers() override;
  void cancel_in_flight() override;
  void terminate_in_flight() override;
  bool retarget(const std::string& backend, std::uint64_t epoch) override;
  bool prewarm(const std::string& backend, Millis timeout, bool writable) override;
  void set_read_only(bool enabled) override;
  std::vector<SessionInfo> unmovable_sessions() override;
  void snapshot_sessions() override;
  std::vector<std::int32_t> quiet_server_pids() override;
  ClientWaits client_waits(Millis settle) override;

 private:
  DataPlane& plane_;
};

// Persists through the state file (temp file, fsync, rename, fsync dir).
class StateFileStore : public StateStore {
 public:
  explicit StateFileStore(std::string path) : path_(std::move(path)) {}
  bool persist(const std::string& backend, std::uint64_t epoch) override;

 private:
  std::string path_;
};

}  // namespace pgcutover::proxy
