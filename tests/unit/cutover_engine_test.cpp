// CutoverEngine against a fake data plane and a fake state store: every transition, both drain
// policies, the dead-man timer, flip/revert/epochs, persistence ordering and failures, and
// commands racing from two threads. Waits are on conditions (wait_for_state, futures), never
// sleep-and-hope; the only real durations are the short timeouts under test.
#include "proxy/cutover/cutover_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <thread>

#include "proxy/admin/admin_routes.h"
#include "proxy/telemetry/cutover_metrics.h"
#include "proxy/telemetry/metrics.h"

namespace pgcutover::proxy {
namespace {

using namespace std::chrono_literals;

// Records every call in one ordered event log shared with FakeStore.
class Events {
 public:
  void add(std::string e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  std::vector<std::string> get() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool has(const std::string& e) const {
    auto v = get();
    return std::find(v.begin(), v.end(), e) != v.end();
  }
  // Position of the first event equal to e, or -1.
  int index(const std::string& e) const {
    auto v = get();
    auto it = std::find(v.begin(), v.end(), e);
    return it == v.end() ? -1 : static_cast<int>(it - v.begin());
  }
  void clear() {
    std::lock_guard lock(mu_);
    events_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

class FakeTraffic : public TrafficControl {
 public:
  explicit FakeTraffic(Events& ev) : ev_(ev) {}

  void close_gate() override {
    ev_.add("close_gate");
    gate_open = false;
  }
  void open_gate() override {
    ev_.add("open_gate");
    gate_open = true;
  }
  int transactions_in_flight() override { return in_flight.load(); }
  int held_clients() override { return held.load(); }
  int pinned_sessions() override { return 2; }
  std::vector<ClientInfo> blockers() override {
    ClientInfo c;
    c.client_id = 42;
    c.user = "app";
    c.database = "db";
    c.application_name = "worker";
    c.address = "10.0.0.1:5555";
    c.transaction_age = 1234ms;
    return {c};
  }
  void cancel_in_flight() override {
    ev_.add("cancel");
    if (cancel_drains) end_all();
  }
  void terminate_in_flight() override {
    ev_.add("terminate");
    if (terminate_drains) end_all();
  }
  bool retarget(const std::string& backend, std::uint64_t epoch) override {
    ev_.add("retarget:" + backend + ":" + std::to_string(epoch));
    if (retarget_blocker) retarget_blocker->wait();
    if (!retarget_ok && backend == fail_backend) return false;
    return true;
  }
  bool prewarm(const std::string& backend, Millis, bool) override {
    ev_.add("prewarm:" + backend);
    return prewarm_ok;
  }
  void set_read_only(bool enabled) override {
    ev_.add(enabled ? "read_only:on" : "read_only:off");
    read_only = enabled;
  }
  std::vector<SessionInfo> unmovable_sessions() override { return unmovable; }
  void snapshot_sessions() override {
    // Counted apart from the event list, which other tests compare whole.
    ++snapshots;
    snapshot_gate_closed = !gate_open;
  }
  std::vector<std::int32_t> quiet_server_pids() override {
    // What the fence spares must be read drained, behind the closed gate.
    quiet_read_quiet = !gate_open && in_flight.load() == 0;
    return quiet;
  }

  // A server connection's transaction ends: what the proxy does at ReadyForQuery 'I'.
  void end_transaction() {
    --in_flight;
    if (engine != nullptr) engine->notify_transaction_end();
  }
  void end_all() {
    in_flight = 0;
    if (engine != nullptr) engine->notify_transaction_end();
  }

  CutoverEngine* engine = nullptr;
  std::atomic<int> in_flight{0};
  std::atomic<int> held{0};
  std::atomic<bool> gate_open{true};
  std::atomic<bool> read_only{false};
  bool cancel_drains = false;
  bool terminate_drains = false;
  bool prewarm_ok = true;
  bool retarget_ok = true;
  std::string fail_backend = "target";
  std::shared_future<void>* retarget_blocker = nullptr;
  std::vector<SessionInfo> unmovable;
  std::atomic<int> snapshots{0};
  std::atomic<bool> snapshot_gate_closed{false};
  std::vector<std::int32_t> quiet{4242, 4343};
  std::atomic<bool> quiet_read_quiet{false};

 private:
  Events& ev_;
};

class FakeStore : public StateStore {
 public:
  explicit FakeStore(Events& ev) : ev_(ev) {}
  bool persist(const std::string& backend, std::uint64_t epoch) override {
    ev_.add("persist:" + backend + ":" + std::to_string(epoch));
    ++calls;
    return ok;
  }
  bool ok = true;
  std::atomic<int> calls{0};

 private:
  Events& ev_;
};

class CutoverEngineTest : public ::testing::Test {
 protected:
  CutoverOptions options() {
    CutoverOptions o;
    o.backends = {"source", "target"};
    o.active_backend = "source";
    o.epoch = 0;
    o.drain_timeout = 2s;
    o.max_pause = 30s;
    o.cancel_grace = 2s;
    return o;
  }
  std::unique_ptr<CutoverEngine> make(CutoverOptions o) {
    auto e = std::make_unique<CutoverEngine>(dp, store, std::move(o), &reports);
    dp.engine = e.get();
    return e;
  }
  std::unique_ptr<CutoverEngine> make() { return make(options()); }
  void TearDown() override { dp.engine = nullptr; }

  Events ev;
  FakeTraffic dp{ev};
  FakeStore store{ev};
  Metrics metrics{{"source", "target"}};
  CutoverMetrics reports{metrics};
};

// RUNNING -> PAUSING -> PAUSED when the running transactions end, woken by notification.
TEST_F(CutoverEngineTest, PauseWaitsForDrainThenResume) {
  auto e = make();
  dp.in_flight = 2;
  dp.held = 3;
  auto pause = std::async(std::launch::async, [&] { return e->pause(); });
  ASSERT_TRUE(e->wait_for_state(CutoverState::kPausing, 5s));
  EXPECT_FALSE(dp.gate_open);
  dp.end_transaction();
  dp.end_transaction();
  CommandResult r = pause.get();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.state, CutoverState::kPaused);
  EXPECT_EQ(r.in_flight_at_pause, 2);
  EXPECT_EQ(r.held_clients, 3);
  EXPECT_LT(r.drain, 2s);  // woken by notification, not by the drain timeout
  // The server connections the controller's fence may spare, read once nothing was in flight.
  EXPECT_EQ(r.quiet_server_pids, (std::vector<std::int32_t>{4242, 4343}));
  EXPECT_TRUE(dp.quiet_read_quiet);
  EXPECT_NE(render_result(r).find("\"quiet_server_pids\":[4242,4343]"), std::string::npos)
      << render_result(r);

  CommandResult res = e->resume();
  EXPECT_TRUE(res.ok());
  EXPECT_TRUE(res.changed);
  EXPECT_EQ(res.state, CutoverState::kRunning);
  EXPECT_EQ(res.held_clients, 3);
  EXPECT_TRUE(dp.gate_open);
  EXPECT_EQ(ev.get(), (std::vector<std::string>{"close_gate", "open_gate"}));
}

// Repeating pause or resume is a no-op that answers ok.
TEST_F(CutoverEngineTest, PauseAndResumeAreIdempotent) {
  auto e = make();
  CommandResult r = e->resume();
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.changed);
  ASSERT_TRUE(e->pause().ok());
  r = e->pause();
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.state, CutoverState::kPaused);
  EXPECT_EQ(ev.get(), (std::vector<std::string>{"close_gate"}));
}

// drain_policy=abort: on timeout the gate reopens on the same backend and blockers are named.
TEST_F(CutoverEngineTest, DrainTimeoutAbortResumesAndReportsBlockers) {
  auto e = make();
  dp.in_flight = 1;
  PauseRequest req;
  req.drain_timeout = 50ms;
  CommandResult r = e->pause(req);
  EXPECT_EQ(r.error, CommandError::kDrainTimeout);
  EXPECT_EQ(http_status(r.error), 409);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_EQ(r.backend, "source");
  ASSERT_EQ(r.blockers.size(), 1u);
  EXPECT_EQ(r.blockers[0].client_id, 42u);
  EXPECT_GE(r.drain, 50ms);
  EXPECT_TRUE(dp.gate_open);
  EXPECT_FALSE(ev.has("cancel"));
}

// drain_policy=cancel: cancel the blockers' queries; once they end the proxy is paused.
TEST_F(CutoverEngineTest, DrainTimeoutCancelPolicyCancelsThenPauses) {
  auto e = make();
  dp.in_flight = 1;
  dp.cancel_drains = true;
  PauseRequest req;
  req.drain_timeout = 50ms;
  req.drain_policy = DrainPolicy::kCancel;
  CommandResult r = e->pause(req);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.state, CutoverState::kPaused);
  EXPECT_EQ(r.blockers.size(), 1u);  // the cancelled ones are reported
  EXPECT_TRUE(ev.has("cancel"));
  EXPECT_FALSE(ev.has("terminate"));
  EXPECT_FALSE(dp.gate_open);
}

// Cancel policy: a transaction that ignores the cancel is terminated.
TEST_F(CutoverEngineTest, DrainTimeoutCancelPolicyTerminatesWhenCancelIsNotEnough) {
  auto o = options();
  o.drain_policy = DrainPolicy::kCancel;
  o.drain_timeout = 30ms;
  o.cancel_grace = 30ms;
  auto e = make(o);
  dp.in_flight = 1;
  dp.terminate_drains = true;
  CommandResult r = e->pause();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.state, CutoverState::kPaused);
  EXPECT_LT(ev.index("cancel"), ev.index("terminate"));
}

// Cancel policy: when even terminate does not drain, the pause gives up and resumes.
TEST_F(CutoverEngineTest, DrainTimeoutCancelPolicyGivesUpAndResumes) {
  auto o = options();
  o.drain_policy = DrainPolicy::kCancel;
  o.drain_timeout = 20ms;
  o.cancel_grace = 20ms;
  auto e = make(o);
  dp.in_flight = 1;
  CommandResult r = e->pause();
  EXPECT_EQ(r.error, CommandError::kDrainTimeout);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_TRUE(dp.gate_open);
}

// Dead-man timer: a pause with no flip or resume reopens the gate by itself.
TEST_F(CutoverEngineTest, DeadManTimerResumesAbandonedPause) {
  auto o = options();
  o.max_pause = 100ms;
  auto e = make(o);
  ASSERT_TRUE(e->pause().ok());
  EXPECT_EQ(e->status().state, CutoverState::kPaused);
  EXPECT_GT(e->status().dead_man_remaining, 0ms);
  ASSERT_TRUE(e->wait_for_state(CutoverState::kRunning, 5s));
  EXPECT_TRUE(dp.gate_open);
  EXPECT_EQ(e->status().backend, "source");
  EXPECT_NE(metrics.render_text().find(
                "pgcutover_cutover_commands_total{command=\"dead_man\",result=\"ok\"} 1"),
            std::string::npos);
}

// The dead-man timer also interrupts a drain that would outlast max_pause.
TEST_F(CutoverEngineTest, DeadManTimerInterruptsLongDrain) {
  auto e = make();
  dp.in_flight = 1;
  PauseRequest req;
  req.drain_timeout = 10s;
  req.max_pause = 50ms;
  CommandResult r = e->pause(req);
  EXPECT_EQ(r.error, CommandError::kPreempted);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_TRUE(dp.gate_open);
}

// Flip from PAUSED: persist (new epoch) before retarget before reopening the gate.
TEST_F(CutoverEngineTest, FlipPersistsBeforeRetargetAndResume) {
  auto e = make();
  ASSERT_TRUE(e->pause().ok());
  ev.clear();
  CommandResult r = e->flip("target", 0);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.backend, "target");
  EXPECT_EQ(r.previous_backend, "source");
  EXPECT_EQ(r.epoch, 1u);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_EQ(ev.get(),
            (std::vector<std::string>{"persist:target:1", "retarget:target:1", "open_gate"}));
  std::string text = metrics.render_text();
  EXPECT_NE(text.find("pgcutover_active_backend_info{backend=\"target\"} 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_epoch 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_flip_duration_seconds_count 1"), std::string::npos);
}

// Flip from RUNNING: prewarm, pause (drain), persist, retarget, resume in one command.
TEST_F(CutoverEngineTest, FlipFromRunningPrewarmsAndPauses) {
  auto e = make();
  CommandResult r = e->flip("target", 0);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(ev.get(), (std::vector<std::string>{"prewarm:target", "close_gate", "persist:target:1",
                                                "retarget:target:1", "open_gate"}));
}

// Following the fleet's authority lands on exactly its epoch (a proxy that missed flips agrees
// with the fleet again); an authority not newer than the proxy changes nothing.
TEST_F(CutoverEngineTest, FollowLandsOnTheAuthoritysEpoch) {
  auto e = make();
  CommandResult r = e->follow("target", 3);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.backend, "target");
  EXPECT_EQ(r.epoch, 3u);
  EXPECT_EQ(ev.get(), (std::vector<std::string>{"prewarm:target", "close_gate", "persist:target:3",
                                                "retarget:target:3", "open_gate"}));
  ev.clear();
  r = e->follow("source", 3);
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(e->status().backend, "target");
  // Same backend, newer epoch: only the epoch moves, no pause.
  r = e->follow("target", 5);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(ev.get(), (std::vector<std::string>{"persist:target:5", "retarget:target:5"}));
  EXPECT_EQ(e->status().epoch, 5u);
  EXPECT_EQ(e->follow("nowhere", 9).error, CommandError::kUnknownBackend);
}

// A stale epoch is refused and nothing happens, so two controllers cannot fight.
TEST_F(CutoverEngineTest, StaleEpochIsRefused) {
  auto o = options();
  o.epoch = 5;
  auto e = make(o);
  CommandResult r = e->flip("target", 4);
  EXPECT_EQ(r.error, CommandError::kStaleEpoch);
  EXPECT_EQ(http_status(r.error), 409);
  r = e->flip("target", 6);
  EXPECT_EQ(r.error, CommandError::kStaleEpoch);
  EXPECT_EQ(ev.get(), std::vector<std::string>{});
  EXPECT_EQ(e->status().epoch, 5u);
}

// Repeating a flip that already happened (same backend, previous epoch) is ok and a no-op.
TEST_F(CutoverEngineTest, RepeatedFlipIsIdempotent) {
  auto e = make();
  ASSERT_TRUE(e->flip("target", 0).ok());
  ev.clear();
  CommandResult r = e->flip("target", 0);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.epoch, 1u);
  EXPECT_EQ(ev.get(), std::vector<std::string>{});
  EXPECT_EQ(store.calls, 1);
}

// Flip to the active backend at the current epoch: no new epoch; resumes if paused.
TEST_F(CutoverEngineTest, FlipToActiveBackendResumesWithoutNewEpoch) {
  auto e = make();
  ASSERT_TRUE(e->pause().ok());
  CommandResult r = e->flip("source", 0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.epoch, 0u);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_EQ(store.calls, 0);
  EXPECT_FALSE(ev.has("retarget:source:0"));
}

// An unknown backend name is a client error.
TEST_F(CutoverEngineTest, UnknownBackendIsRefused) {
  auto e = make();
  CommandResult r = e->flip("nowhere", 0);
  EXPECT_EQ(r.error, CommandError::kUnknownBackend);
  EXPECT_EQ(http_status(r.error), 400);
  EXPECT_EQ(e->prewarm("nowhere").error, CommandError::kUnknownBackend);
  EXPECT_EQ(ev.get(), std::vector<std::string>{});
}

// The state file cannot be written: the flip is abandoned and the old backend resumes.
TEST_F(CutoverEngineTest, PersistFailureResumesOnOldBackend) {
  auto e = make();
  store.ok = false;
  ASSERT_TRUE(e->pause().ok());
  CommandResult r = e->flip("target", 0);
  EXPECT_EQ(r.error, CommandError::kPersistFailed);
  EXPECT_EQ(http_status(r.error), 500);
  EXPECT_EQ(r.backend, "source");
  EXPECT_EQ(r.epoch, 0u);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_FALSE(ev.has("retarget:target:1"));
  EXPECT_TRUE(dp.gate_open);
}

// The data plane cannot switch: the old backend is persisted under a newer epoch and resumes.
TEST_F(CutoverEngineTest, RetargetFailureRollsBack) {
  auto e = make();
  dp.retarget_ok = false;
  CommandResult r = e->flip("target", 0);
  EXPECT_EQ(r.error, CommandError::kRetargetFailed);
  EXPECT_EQ(r.backend, "source");
  EXPECT_EQ(r.epoch, 2u);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_LT(ev.index("persist:target:1"), ev.index("persist:source:2"));
  EXPECT_TRUE(ev.has("retarget:source:2"));
}

// Prewarm failure before a flip from RUNNING changes nothing (the gate never closes).
TEST_F(CutoverEngineTest, PrewarmFailureLeavesTrafficAlone) {
  auto e = make();
  dp.prewarm_ok = false;
  CommandResult r = e->flip("target", 0);
  EXPECT_EQ(r.error, CommandError::kPrewarmFailed);
  EXPECT_EQ(http_status(r.error), 502);
  EXPECT_FALSE(ev.has("close_gate"));
  EXPECT_EQ(e->prewarm("target").error, CommandError::kPrewarmFailed);
  dp.prewarm_ok = true;
  EXPECT_TRUE(e->prewarm("target", 100ms).ok());
}

// Revert flips back to the previous backend with a new epoch; a repeat with the same epoch is
// stale rather than a second revert.
TEST_F(CutoverEngineTest, RevertFlipsBack) {
  auto e = make();
  ASSERT_TRUE(e->flip("target", 0).ok());
  CommandResult r = e->revert(1);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.command, "revert");
  EXPECT_EQ(r.backend, "source");
  EXPECT_EQ(r.epoch, 2u);
  EXPECT_TRUE(ev.has("persist:source:2"));
  EXPECT_EQ(e->revert(1).error, CommandError::kStaleEpoch);
}

// Revert with three backends and no history has nowhere to go.
TEST_F(CutoverEngineTest, RevertWithoutPreviousBackend) {
  auto o = options();
  o.backends = {"source", "target", "spare"};
  auto e = make(o);
  EXPECT_EQ(e->revert().error, CommandError::kNoPreviousBackend);
  // With two backends, "the other one" is the previous backend after a restart.
  dp.engine = nullptr;
  e.reset();
  e = make();
  EXPECT_EQ(e->revert().backend, "target");
}

// Session mode: unmovable sessions block the flip by default and the old backend resumes.
TEST_F(CutoverEngineTest, UnmovableSessionsBlockFlip) {
  auto e = make();
  dp.unmovable = {SessionInfo{7, "app", "db", "LISTEN"}};
  CommandResult r = e->flip("target", 0);
  EXPECT_EQ(r.error, CommandError::kUnmovableSessions);
  ASSERT_EQ(r.unmovable.size(), 1u);
  EXPECT_EQ(r.unmovable[0].reason, "LISTEN");
  EXPECT_EQ(r.backend, "source");
  EXPECT_EQ(r.state, CutoverState::kRunning);
  EXPECT_EQ(store.calls, 0);
}

// Once drained, sessions record their state (before any fence can end their connections),
// and the pause answer and the status name the sessions a flip would refuse or end.
TEST_F(CutoverEngineTest, PauseSnapshotsSessionsAndReportsUnmovable) {
  auto e = make();
  dp.unmovable = {SessionInfo{7, "app", "db", "LISTEN"}};
  EXPECT_EQ(e->status().unmovable.size(), 1u);
  CommandResult r = e->pause();
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.unmovable.size(), 1u);
  EXPECT_EQ(r.unmovable[0].client_id, 7u);
  EXPECT_EQ(dp.snapshots, 1);
  EXPECT_TRUE(dp.snapshot_gate_closed);
  EXPECT_TRUE(e->resume().ok());
}

// unmovable_policy=terminate: the flip proceeds and reports who was ended.
TEST_F(CutoverEngineTest, UnmovableSessionsTerminatePolicy) {
  auto o = options();
  o.unmovable_policy = UnmovablePolicy::kTerminate;
  auto e = make(o);
  dp.unmovable = {SessionInfo{7, "app", "db", "temp table"}};
  CommandResult r = e->flip("target", 0);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.unmovable.size(), 1u);
  EXPECT_EQ(r.backend, "target");
}

// Read-only mode is forwarded to the data plane, reported in status and idempotent.
TEST_F(CutoverEngineTest, ReadOnlyMode) {
  auto e = make();
  CommandResult r = e->set_read_only(true);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(r.read_only);
  EXPECT_TRUE(dp.read_only);
  EXPECT_TRUE(e->status().read_only);
  EXPECT_FALSE(e->set_read_only(true).changed);
  EXPECT_TRUE(e->set_read_only(false).changed);
  EXPECT_FALSE(dp.read_only);
  EXPECT_NE(metrics.render_text().find("pgcutover_read_only 0"), std::string::npos);
}

// A command arriving while another runs is refused with busy (409), never queued.
TEST_F(CutoverEngineTest, ConcurrentCommandIsBusy) {
  auto e = make();
  dp.in_flight = 1;
  auto pause = std::async(std::launch::async, [&] { return e->pause(); });
  ASSERT_TRUE(e->wait_for_state(CutoverState::kPausing, 5s));
  CommandResult r = e->flip("target", 0);
  EXPECT_EQ(r.error, CommandError::kBusy);
  EXPECT_EQ(http_status(r.error), 409);
  EXPECT_EQ(e->set_read_only(true).error, CommandError::kBusy);
  EXPECT_EQ(e->status().command, "pause");
  dp.end_transaction();
  EXPECT_TRUE(pause.get().ok());
}

// RESUME during PAUSING interrupts the drain: the pause answers preempted, traffic flows.
TEST_F(CutoverEngineTest, ResumeDuringPausingPreemptsDrain) {
  auto e = make();
  dp.in_flight = 1;
  auto pause = std::async(std::launch::async, [&] { return e->pause(); });
  ASSERT_TRUE(e->wait_for_state(CutoverState::kPausing, 5s));
  CommandResult r = e->resume();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.state, CutoverState::kRunning);
  CommandResult p = pause.get();
  EXPECT_EQ(p.error, CommandError::kPreempted);
  EXPECT_TRUE(dp.gate_open);
}

// A second FLIP while one is persisting/retargeting is refused; only one epoch is made.
TEST_F(CutoverEngineTest, SecondFlipDuringFlipIsBusy) {
  auto e = make();
  ASSERT_TRUE(e->pause().ok());
  std::promise<void> release;
  std::shared_future<void> blocker = release.get_future().share();
  dp.retarget_blocker = &blocker;
  auto first = std::async(std::launch::async, [&] { return e->flip("target", 0); });
  ASSERT_TRUE(e->wait_for_state(CutoverState::kFlipping, 5s));
  EXPECT_EQ(e->flip("target", 0).error, CommandError::kBusy);
  EXPECT_EQ(e->resume().error, CommandError::kBusy);  // the flip resumes by itself
  release.set_value();
  CommandResult r = first.get();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(store.calls, 1);
  dp.retarget_blocker = nullptr;
}

// Two controllers race the same flip from two threads: exactly one epoch bump and one persist;
// the loser gets busy or the idempotent "already flipped".
TEST_F(CutoverEngineTest, TwoThreadsRaceFlip) {
  for (int round = 0; round < 20; ++round) {
    auto e = make();
    store.calls = 0;
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    auto a = std::async(std::launch::async, [&] {
      start.wait();
      return e->flip("target", 0);
    });
    auto b = std::async(std::launch::async, [&] {
      start.wait();
      return e->flip("target", 0);
    });
    go.set_value();
    CommandResult ra = a.get();
    CommandResult rb = b.get();
    EXPECT_EQ(store.calls, 1);
    EXPECT_EQ(e->status().epoch, 1u);
    EXPECT_EQ(static_cast<int>(ra.changed) + static_cast<int>(rb.changed), 1);
    for (const auto* r : {&ra, &rb}) {
      EXPECT_TRUE(r->ok() || r->error == CommandError::kBusy) << to_string(r->error);
    }
    dp.engine = nullptr;
  }
}

// status() reports the snapshot the admin API renders.
TEST_F(CutoverEngineTest, StatusSnapshot) {
  auto e = make();
  dp.held = 4;
  dp.in_flight = 0;
  CutoverStatus s = e->status();
  EXPECT_EQ(s.state, CutoverState::kRunning);
  EXPECT_EQ(s.backend, "source");
  EXPECT_EQ(s.epoch, 0u);
  EXPECT_EQ(s.held_clients, 4);
  EXPECT_EQ(s.pinned_sessions, 2);
  EXPECT_TRUE(s.command.empty());
  EXPECT_EQ(s.paused_for, 0ms);
  ASSERT_TRUE(e->pause().ok());
  s = e->status();
  EXPECT_EQ(s.state, CutoverState::kPaused);
  EXPECT_GT(s.dead_man_remaining, 0ms);
}

// Shutting down while paused reopens the gate; commands afterwards are refused.
TEST_F(CutoverEngineTest, StopWhilePausedReopensGate) {
  auto e = make();
  ASSERT_TRUE(e->pause().ok());
  e->stop();
  EXPECT_TRUE(dp.gate_open);
  EXPECT_EQ(e->pause().error, CommandError::kStopped);
}

// A hand-over between two proxy processes is taken only with the gate open and no command
// running; while it holds, every command but resume answers kHandover (409) with the reason,
// and nothing reaches the data plane.
TEST_F(CutoverEngineTest, HandoverHoldRefusesCommandsButResume) {
  auto e = make();
  std::string why;
  ASSERT_TRUE(e->pause().ok());
  EXPECT_FALSE(e->try_hold("handed over", why));
  EXPECT_NE(why.find("gate is closed"), std::string::npos) << why;
  ASSERT_TRUE(e->resume().ok());
  ev.clear();

  ASSERT_TRUE(e->try_hold("handed over to pid 42", why)) << why;
  EXPECT_EQ(e->status().hold, "handed over to pid 42");
  EXPECT_FALSE(e->try_hold("again", why));
  for (CommandResult r : {e->pause(), e->flip("target", 0), e->revert(), e->set_read_only(true),
                          e->prewarm("target")}) {
    EXPECT_EQ(r.error, CommandError::kHandover) << r.command;
    EXPECT_EQ(http_status(r.error), 409);
    EXPECT_EQ(r.message, "handed over to pid 42");
  }
  EXPECT_TRUE(e->resume().ok());
  EXPECT_EQ(ev.get(), std::vector<std::string>{});

  e->release_hold();
  EXPECT_TRUE(e->status().hold.empty());
  EXPECT_TRUE(e->pause().ok());
  EXPECT_TRUE(e->resume().ok());
}

}  // namespace
}  // namespace pgcutover::proxy
