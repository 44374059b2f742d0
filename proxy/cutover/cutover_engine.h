// The cutover state machine: pause (drain), flip, resume, revert, read-only, prewarm.
// Pure logic: it drives the data plane through the TrafficControl interface and persists through
// StateStore, so it is unit-tested with fakes (tests/unit/cutover_engine_test.cpp) and wired to
// the real proxy by an adapter. States and their timeouts are documented in docs/cutover.md.
//
// Threading: commands are blocking calls (a pause waits for the drain) made from the admin
// server's worker threads. One command runs at a time; a command that arrives while another
// runs is refused at once with CommandError::kBusy (HTTP 409), never queued, so a controller
// always knows whether its command ran. The one exception is resume() during PAUSING: it
// interrupts the drain (the pause answers kPreempted) and then resumes. status() never blocks
// on a command.
//
// The engine never calls TrafficControl or StateStore while holding its own mutex, so those may
// call back into notify_transaction_end() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/config.h"

namespace pgcutover::proxy {

using Millis = std::chrono::milliseconds;

enum class CutoverState {
  kRunning,   // gate open: transactions start freely
  kPausing,   // gate closed: new transactions are held, running ones drain
  kPaused,    // gate closed and no server connection in a transaction
  kFlipping,  // paused, persisting and retargeting to another backend
};
inline constexpr std::size_t kCutoverStateCount = 4;
std::string_view to_string(CutoverState s);

// The drain policy (cutover.drain_policy) and the unmovable-session policy
// (cutover.unmovable_policy) are the configuration's own enums: common/config.h.

// A client holding up a drain. No secrets: names and an address only.
struct ClientInfo {
  std::uint64_t client_id = 0;
  std::string user;
  std::string database;
  std::string application_name;
  std::string address;        // client's ip:port
  Millis transaction_age{0};  // how long its current transaction has been running
};

// What the clients held by one pause waited, each from its message reaching the closed gate
// to the first byte of its answer (proxy/telemetry/held_waits.h): the pause as the
// application saw it.
struct ClientWaits {
  int held = 0;      // clients held by the closed gate
  int answered = 0;  // of them, answered when measured (the rest count with their wait so far)
  double worst_ms = 0;
  double p99_ms = 0;
};

// A session whose state cannot follow it to another backend.
struct SessionInfo {
  std::uint64_t client_id = 0;
  std::string user;
  std::string database;
  std::string reason;  // "LISTEN", "temp table", "advisory lock", "WITH HOLD cursor", ...
};

// Implemented by the proxy: one object spanning all shards. Every method is thread-safe, must
// not throw, and returns promptly (post to the shards, do not wait for them) unless stated.
class TrafficControl {
 public:
  virtual ~TrafficControl() = default;
  // No new transaction starts: a client between transactions that sends a query is held (its
  // bytes buffered) until open_gate(). Transactions already running continue.
  virtual void close_gate() = 0;
  // Held clients continue, on whatever backend is active now.
  virtual void open_gate() = 0;
  // Server connections currently inside a transaction (or otherwise not at ReadyForQuery 'I').
  // Called often while draining: read counters, take no lock the caller of
  // notify_transaction_end() might hold.
  virtual int transactions_in_flight() = 0;
  // Clients currently held by the closed gate.
  virtual int held_clients() = 0;
  // Sessions pinned to a server connection.
  virtual int pinned_sessions() = 0;
  // The clients whose transactions are still running (for the drain-timeout report).
  virtual std::vector<ClientInfo> blockers() = 0;
  // drain_policy=cancel, step 1: send a CancelRequest for every running query.
  virtual void cancel_in_flight() = 0;
  // drain_policy=cancel, step 2: terminate the transactions still running (close their server
  // connections; their clients get an ErrorResponse, SQLSTATE 57P01).
  virtual void terminate_in_flight() = 0;
  // Every existing server connection is closed and can never serve again; new server
  // connections go to `backend`. Only called while the gate is closed and nothing is in
  // flight. May block briefly. false: could not switch (the engine rolls back).
  virtual bool retarget(const std::string& backend, std::uint64_t epoch) = 0;
  // Opens a warm pool to `backend` (connect, TLS, auth) so the flip does not pay for it. Blocks
  // up to `timeout`. false: the backend is not reachable. `writable`: the connections log in
  // with default_transaction_read_only = off whatever the role says (the controller asks for it
  // when it lifts the destination's fence before any gate opens there).
  virtual bool prewarm(const std::string& backend, Millis timeout, bool writable) = 0;
  // Read-only mode: every new transaction is read-only; writes get SQLSTATE 25006.
  virtual void set_read_only(bool enabled) = 0;
  // Session mode: sessions whose state cannot move (empty in transaction mode).
  virtual std::vector<SessionInfo> unmovable_sessions() = 0;
  // Called once drained: sessions that keep a server connection between transactions (session
  // mode, pinned) record their state now, while it can still be read, so they can move even if
  // the old server connection is ended during the pause (the controller's fence ends every
  // session of the fenced roles on the source). Blocks briefly (bounded).
  virtual void snapshot_sessions() {}
  // Called once drained: the backend pids of every server connection to the active backend.
  // Quiet until the gate reopens (nothing in flight, the gate holds every next transaction)
  // and never used again after a flip (older epoch), so the controller's fence may spare them.
  virtual std::vector<std::int32_t> quiet_server_pids() { return {}; }
  // Called once the gate has reopened: the waits of the clients this pause held, after
  // waiting up to `settle` for each to get its first answer byte. Blocks at most `settle`.
  virtual ClientWaits client_waits(Millis settle) {
    (void)settle;
    return {};
  }
};

// Implemented over proxy/cutover/state_file.*: writes backend and epoch atomically and durably
// (temp file, fsync, rename, fsync dir). Returns false on any failure; must not throw.
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual bool persist(const std::string& backend, std::uint64_t epoch) = 0;
};

struct CutoverOptions {
  std::vector<std::string> backends;  // configured backend names
  std::string active_backend;         // from the state file, else cutover.initial_backend
  std::uint64_t epoch = 0;            // from the state file
  std::string previous_backend;       // for revert; empty: "the other one" when there are two
  Millis drain_timeout{5000};
  DrainPolicy drain_policy = DrainPolicy::kAbort;
  Millis cancel_grace{2000};    // wait after cancel, then after terminate (cancel policy)
  Millis max_pause{30000};      // dead-man timer: gate closed at most this long without a command
  bool prewarm_on_flip = true;  // a flip from RUNNING prewarms the target before pausing
  Millis prewarm_timeout{5000};
  UnmovablePolicy unmovable_policy = UnmovablePolicy::kBlock;
  // How long a reopening command waits for the held clients' first answers before it reports
  // their waits (the admin answer waits, never a client).
  Millis client_wait_settle{1000};
  // Backstop only: the drain is woken by notify_transaction_end(); this bounds a missed one.
  Millis drain_poll_interval{100};
};

struct PauseRequest {
  std::optional<Millis> drain_timeout;
  std::optional<DrainPolicy> drain_policy;
  std::optional<Millis> max_pause;  // dead-man timer for this pause
};

enum class CommandError {
  kNone,
  kBusy,               // another command is running (409)
  kStaleEpoch,         // expected epoch is not the current one (409)
  kUnknownBackend,     // not a configured backend (400)
  kNoPreviousBackend,  // revert with nothing to go back to (409)
  kDrainTimeout,       // transactions did not finish; resumed on the current backend (409)
  kPreempted,          // the pause was interrupted by resume or the dead-man timer (409)
  kUnmovableSessions,  // session-mode sessions cannot move; resumed (409)
  kPrewarmFailed,      // the target could not be reached (502)
  kPersistFailed,      // the state file could not be written; resumed on the old backend (500)
  kRetargetFailed,     // the data plane could not switch; rolled back and resumed (500)
  kStopped,            // the engine is shutting down (503)
  kHandover,           // a hand-over between two proxy processes holds commands (409)
};
std::string_view to_string(CommandError e);
// The HTTP status the admin API answers for a result with this error.
int http_status(CommandError e);

struct CommandResult {
  std::string command;  // pause, resume, flip, revert, readonly, prewarm
  CommandError error = CommandError::kNone;
  std::string message;   // human-readable, no secrets
  bool changed = false;  // false: the command was a no-op (idempotent repeat)
  // State after the command.
  CutoverState state = CutoverState::kRunning;
  std::string backend;
  std::string previous_backend;
  std::uint64_t epoch = 0;
  bool read_only = false;
  // Timings (0 when the phase did not happen).
  Millis prewarm{0};
  Millis drain{0};                   // gate closed to nothing in flight
  Millis flip{0};                    // drained to gate reopened (persist + retarget)
  Millis pause{0};                   // gate closed to gate reopened, when this command reopened it
  int in_flight_at_pause = 0;        // transactions running when the gate closed
  int held_clients = 0;              // clients held when the drain ended / the gate reopened
  ClientWaits client_waits;          // when this command reopened the gate: what they waited
  std::vector<ClientInfo> blockers;  // drain timeout: who held it up (cancelled ones too)
  std::vector<SessionInfo> unmovable;  // flip: sessions that could not move
  // pause: the server connections to `backend` that stay quiet while paused (quiet_server_pids)
  std::vector<std::int32_t> quiet_server_pids;

  bool ok() const { return error == CommandError::kNone; }
};

struct CutoverStatus {
  CutoverState state = CutoverState::kRunning;
  std::string backend;
  std::string previous_backend;
  std::uint64_t epoch = 0;
  bool read_only = false;
  int held_clients = 0;
  int transactions_in_flight = 0;
  int pinned_sessions = 0;
  std::vector<SessionInfo> unmovable;  // sessions a flip would refuse or end (unmovable_policy)
  Millis paused_for{0};                // how long the gate has been closed (0 when running)
  Millis dead_man_remaining{0};        // time left before the dead-man timer resumes (0 if running)
  std::string command;                 // the command running now, empty when none
  std::string hold;                    // why commands are held (a hand-over), empty when not
  Millis last_gate_closed{0};          // the last pause: how long the gate was closed
  ClientWaits last_client_waits;       // the last pause: what its held clients waited
  std::vector<std::string> backends;
};

// What the engine reports as it goes, for whoever exports it (the proxy's Prometheus metrics:
// proxy/telemetry/cutover_metrics.h). The engine knows nothing of telemetry; every call is made
// on a cold path (a command, a state change), never per transaction.
class CutoverObserver {
 public:
  virtual ~CutoverObserver() = default;
  // Once, at construction: the configured backends, the active one and its epoch.
  virtual void started(const std::vector<std::string>& backends, const std::string& active,
                       std::uint64_t epoch) = 0;
  virtual void state_changed(CutoverState state) = 0;
  // A flip switched to `backend` under `epoch`.
  virtual void active_changed(const std::string& backend, std::uint64_t epoch) = 0;
  // A failed flip rolled back: the epoch moved, the backend did not.
  virtual void epoch_changed(std::uint64_t epoch) = 0;
  virtual void read_only_changed(bool enabled) = 0;
  // Every command's outcome (command name, CommandError as text, "ok" on success).
  virtual void command_finished(std::string_view command, std::string_view outcome) = 0;
  virtual void pause_ended(Millis gate_closed_for, const ClientWaits& waits) = 0;
  virtual void flip_done(Millis flip_took) = 0;
  // The dead-man timer reopened the gate on `backend` (the controller never came back), once
  // the engine takes commands again.
  virtual void dead_man_resumed(const std::string& backend) { (void)backend; }
};

class CutoverEngine {
 public:
  // `observer` may be null. Starts the dead-man timer thread.
  CutoverEngine(TrafficControl& data_plane, StateStore& store, CutoverOptions options,
                CutoverObserver* observer = nullptr);
  ~CutoverEngine();
  CutoverEngine(const CutoverEngine&) = delete;
  CutoverEngine& operator=(const CutoverEngine&) = delete;

  // Closes the gate and waits for running transactions to finish. Already paused: ok,
  // changed=false. Drain timeout: per policy (see DrainPolicy).
  CommandResult pause(const PauseRequest& request = {});
  // Reopens the gate on the active backend. Running: ok, changed=false. During PAUSING:
  // interrupts the drain.
  CommandResult resume();
  // Switches to `backend`. `expected_epoch` must be the current epoch (else kStaleEpoch), except
  // that repeating a flip that already happened (backend active, expected == epoch - 1) answers
  // ok, changed=false. From RUNNING: prewarm (if configured), pause, flip, resume. From PAUSED:
  // flip and resume. Persists backend and epoch+1 before retargeting and reopening the gate.
  // Any failure reopens the gate on the backend that was active before.
  CommandResult flip(const std::string& backend, std::uint64_t expected_epoch);
  // Follows the fleet's authority (proxy/fleet/authority.h): when `epoch` is above the current
  // one, moves to `backend` as a flip would (from RUNNING or PAUSED) but lands on exactly
  // `epoch`, so that a proxy that missed flips agrees with the fleet again. An epoch not above
  // the current one changes nothing (ok, changed=false).
  CommandResult follow(const std::string& backend, std::uint64_t epoch);
  // Flip back to the previous backend. Without an expected epoch the current one is used.
  CommandResult revert(std::optional<std::uint64_t> expected_epoch = std::nullopt);
  CommandResult set_read_only(bool enabled);
  CommandResult prewarm(const std::string& backend, std::optional<Millis> timeout = std::nullopt,
                        bool writable = false);

  CutoverStatus status() const;
  // State, backend and epoch only: never asks the data plane (callable before it runs).
  struct Position {
    CutoverState state = CutoverState::kRunning;
    std::string backend;
    std::uint64_t epoch = 0;
  };
  Position position() const;

  // Called by the data plane whenever a server connection's transaction ends (ReadyForQuery
  // 'I'). One relaxed atomic load unless a drain is waiting.
  void notify_transaction_end();

  // Waits until the state is `state` (tests; shutdown). false on timeout.
  bool wait_for_state(CutoverState state, Millis timeout) const;

  // A hand-over between two proxy processes (proxy/runtime/handover.h) holds every command but
  // resume: each answers kHandover with `reason` until release_hold(). try_hold() takes the
  // hold only when no command runs and the gate is open (else false, with why_not).
  bool try_hold(const std::string& reason, std::string& why_not);
  void hold(const std::string& reason);
  void release_hold();

  // Stops the dead-man thread; a pause in progress is resumed first so nothing stays frozen.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  class CommandSlot;

  // Closes the gate and drains; on failure the gate is open again. Called inside a command.
  bool do_pause(const PauseRequest& request, CommandResult& result);
  // Reopens the gate and records the pause duration. Called inside a command (or dead-man).
  void do_open_gate(CommandResult* result, std::string_view reason);
  // `to_epoch`: the epoch to land on (follow); default: the current one + 1.
  CommandResult do_flip(const std::string& command, const std::string& backend,
                        std::uint64_t expected_epoch,
                        std::optional<std::uint64_t> to_epoch = std::nullopt);
  void set_state_locked(CutoverState s);
  void fill_locked(CommandResult& r) const;
  CommandResult finish(CommandResult r);
  bool known_backend(const std::string& name) const;
  int wait_drained(Clock::time_point deadline);
  void dead_man_loop();

  TrafficControl& dp_;
  StateStore& store_;
  const CutoverOptions options_;
  CutoverObserver* observer_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  CutoverState state_ = CutoverState::kRunning;
  std::string backend_;
  std::string previous_backend_;
  std::uint64_t epoch_ = 0;
  bool read_only_ = false;
  std::string command_;  // running command, empty when none (the command slot)
  std::string hold_;     // a hand-over holds commands: why (empty when none)
  Millis last_gate_closed_{0};
  ClientWaits last_client_waits_;
  bool preempt_ = false;  // resume/dead-man asks a running drain to give up
  bool stopping_ = false;
  std::optional<Clock::time_point> gate_closed_at_;
  Clock::time_point dead_man_deadline_{};
  std::uint64_t transaction_ends_ = 0;  // bumped by notify_transaction_end()
  std::atomic<bool> draining_{false};

  std::thread dead_man_;
};

}  // namespace pgcutover::proxy
