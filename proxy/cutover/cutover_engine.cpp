#include "proxy/cutover/cutover_engine.h"

#include <algorithm>

#include "common/log.h"

namespace pgcutover::proxy {
namespace {

std::string ms_string(Millis d) {
  return std::to_string(d.count());
}

template <class D>
Millis to_ms(D d) {
  return std::chrono::duration_cast<Millis>(d);
}

}  // namespace

std::string_view to_string(CutoverState s) {
  switch (s) {
    case CutoverState::kRunning:
      return "running";
    case CutoverState::kPausing:
      return "pausing";
    case CutoverState::kPaused:
      return "paused";
    case CutoverState::kFlipping:
      return "flipping";
  }
  return "unknown";
}

std::string_view to_string(CommandError e) {
  switch (e) {
    case CommandError::kNone:
      return "ok";
    case CommandError::kBusy:
      return "busy";
    case CommandError::kStaleEpoch:
      return "stale_epoch";
    case CommandError::kUnknownBackend:
      return "unknown_backend";
    case CommandError::kNoPreviousBackend:
      return "no_previous_backend";
    case CommandError::kDrainTimeout:
      return "drain_timeout";
    case CommandError::kPreempted:
      return "preempted";
    case CommandError::kUnmovableSessions:
      return "unmovable_sessions";
    case CommandError::kPrewarmFailed:
      return "prewarm_failed";
    case CommandError::kPersistFailed:
      return "persist_failed";
    case CommandError::kRetargetFailed:
      return "retarget_failed";
    case CommandError::kStopped:
      return "stopped";
    case CommandError::kHandover:
      return "handover_in_progress";
  }
  return "unknown";
}

int http_status(CommandError e) {
  switch (e) {
    case CommandError::kNone:
      return 200;
    case CommandError::kUnknownBackend:
      return 400;
    case CommandError::kBusy:
    case CommandError::kStaleEpoch:
    case CommandError::kNoPreviousBackend:
    case CommandError::kDrainTimeout:
    case CommandError::kPreempted:
    case CommandError::kUnmovableSessions:
    case CommandError::kHandover:
      return 409;
    case CommandError::kPrewarmFailed:
      return 502;
    case CommandError::kPersistFailed:
    case CommandError::kRetargetFailed:
      return 500;
    case CommandError::kStopped:
      return 503;
  }
  return 500;
}

// Holds the single command slot for the life of a command. Acquisition never waits: a second
// command is refused with kBusy (see the header for why).
class CutoverEngine::CommandSlot {
 public:
  CommandSlot(CutoverEngine& e, std::string_view name) : engine_(e) {
    std::lock_guard lock(e.mu_);
    if (e.stopping_) {
      error_ = CommandError::kStopped;
    } else if (!e.hold_.empty() && name != "resume") {
      error_ = CommandError::kHandover;
      running_ = e.hold_;
    } else if (!e.command_.empty()) {
      error_ = CommandError::kBusy;
      running_ = e.command_;
    } else {
      e.command_ = name;
      held_ = true;
    }
  }
  ~CommandSlot() {
    if (!held_) return;
    {
      std::lock_guard lock(engine_.mu_);
      engine_.command_.clear();
    }
    engine_.cv_.notify_all();
  }
  CommandSlot(const CommandSlot&) = delete;
  CommandSlot& operator=(const CommandSlot&) = delete;

  bool held() const { return held_; }
  // Fills a refusal for a command that did not get the slot.
  CommandResult refusal(std::string command) const {
    CommandResult r;
    r.command = std::move(command);
    r.error = error_;
    if (error_ == CommandError::kStopped)
      r.message = "the proxy is shutting down";
    else if (error_ == CommandError::kHandover)
      r.message = running_;
    else
      r.message = "another command is running (" + running_ + "); retry when it is done";
    return r;
  }

 private:
  CutoverEngine& engine_;
  bool held_ = false;
  CommandError error_ = CommandError::kNone;
  std::string running_;
};

CutoverEngine::CutoverEngine(TrafficControl& data_plane, StateStore& store, CutoverOptions options,
                             CutoverObserver* observer)
    : dp_(data_plane), store_(store), options_(std::move(options)), observer_(observer) {
  backend_ = options_.active_backend;
  previous_backend_ = options_.previous_backend;
  epoch_ = options_.epoch;
  if (!known_backend(backend_)) {
    // The config loader validates this; reaching here is a wiring bug, so say it loudly.
    log::error("cutover_unknown_active_backend", {{"backend", backend_}});
  }
  if (observer_ != nullptr) observer_->started(options_.backends, backend_, epoch_);
  dead_man_ = std::thread([this] { dead_man_loop(); });
}

CutoverEngine::~CutoverEngine() {
  stop();
}

void CutoverEngine::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    preempt_ = true;
  }
  cv_.notify_all();
  if (dead_man_.joinable()) dead_man_.join();
  // A running command sees stopping_ and reopens the gate itself; wait for it, then make sure
  // the gate is not left closed by anyone.
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return command_.empty(); });
  if (gate_closed_at_) {
    command_ = "stop";
    lock.unlock();
    do_open_gate(nullptr, "shutdown");
    lock.lock();
    command_.clear();
  }
}

bool CutoverEngine::known_backend(const std::string& name) const {
  return std::find(options_.backends.begin(), options_.backends.end(), name) !=
         options_.backends.end();
}

void CutoverEngine::set_state_locked(CutoverState s) {
  state_ = s;
  if (observer_ != nullptr) observer_->state_changed(s);
  cv_.notify_all();
}

void CutoverEngine::fill_locked(CommandResult& r) const {
  r.state = state_;
  r.backend = backend_;
  r.previous_backend = previous_backend_;
  r.epoch = epoch_;
  r.read_only = read_only_;
}

CommandResult CutoverEngine::finish(CommandResult r) {
  {
    std::lock_guard lock(mu_);
    fill_locked(r);
  }
  if (observer_ != nullptr) observer_->command_finished(r.command, to_string(r.error));
  if (!r.ok()) {
    log::warn("cutover_command_failed", {{"command", r.command},
                                         {"error", std::string(to_string(r.error))},
                                         {"message", r.message}});
  }
  return r;
}

void CutoverEngine::notify_transaction_end() {
  // seq_cst pairs with the store in do_pause(): either the drain sees the data plane's
  // decremented counter, or this load sees draining_ and wakes it. No lost wake-up.
  if (!draining_.load()) return;
  {
    std::lock_guard lock(mu_);
    ++transaction_ends_;
  }
  cv_.notify_all();
}

int CutoverEngine::wait_drained(Clock::time_point deadline) {
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(mu_);
      if (preempt_ || stopping_) return -1;
      seen = transaction_ends_;
    }
    // Read outside the lock: the data plane may be inside notify_transaction_end() right now.
    int n = dp_.transactions_in_flight();
    if (n <= 0) return 0;
    auto now = Clock::now();
    if (now >= deadline) return n;
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, std::min(deadline, now + options_.drain_poll_interval),
                   [&] { return transaction_ends_ != seen || preempt_ || stopping_; });
  }
}

bool CutoverEngine::do_pause(const PauseRequest& request, CommandResult& r) {
  const Millis drain_timeout = request.drain_timeout.value_or(options_.drain_timeout);
  const DrainPolicy policy = request.drain_policy.value_or(options_.drain_policy);
  const Millis max_pause = request.max_pause.value_or(options_.max_pause);
  const auto start = Clock::now();
  {
    std::lock_guard lock(mu_);
    preempt_ = false;
    gate_closed_at_ = start;
    dead_man_deadline_ = start + max_pause;
    draining_.store(true);
  }
  dp_.close_gate();
  r.in_flight_at_pause = std::max(0, dp_.transactions_in_flight());
  {
    // Published only once the gate is really closed, so PAUSING means "closed, draining".
    std::lock_guard lock(mu_);
    set_state_locked(CutoverState::kPausing);
  }
  log::info("cutover_pausing", {{"in_flight", std::to_string(r.in_flight_at_pause)},
                                {"drain_timeout_ms", ms_string(drain_timeout)},
                                {"drain_policy", std::string(to_string(policy))},
                                {"max_pause_ms", ms_string(max_pause)}});

  int left = wait_drained(start + drain_timeout);
  if (left > 0) {
    // Record who held the drain before anything is cancelled, so the report names them.
    r.blockers = dp_.blockers();
    if (policy == DrainPolicy::kCancel) {
      log::warn("cutover_drain_timeout_cancel", {{"in_flight", std::to_string(left)}});
      dp_.cancel_in_flight();
      left = wait_drained(Clock::now() + options_.cancel_grace);
      if (left > 0) {
        log::warn("cutover_drain_timeout_terminate", {{"in_flight", std::to_string(left)}});
        dp_.terminate_in_flight();
        left = wait_drained(Clock::now() + options_.cancel_grace);
      }
      if (left == 0) r.message = "drain timed out; cancelled the blocking transactions";
    }
  }
  r.drain = to_ms(Clock::now() - start);
  if (left == 0) {
    dp_.snapshot_sessions();
    {
      std::lock_guard lock(mu_);
      draining_.store(false);
      set_state_locked(CutoverState::kPaused);
    }
    r.held_clients = dp_.held_clients();
    r.quiet_server_pids = dp_.quiet_server_pids();
    // Reported before any flip: the sessions a flip would refuse or end (unmovable_policy).
    r.unmovable = dp_.unmovable_sessions();
    log::info("cutover_paused", {{"drain_ms", ms_string(r.drain)},
                                 {"held_clients", std::to_string(r.held_clients)},
                                 {"cancelled", std::to_string(r.blockers.size())}});
    return true;
  }
  if (left < 0) {
    r.error = CommandError::kPreempted;
    r.message = "pause interrupted by resume, the dead-man timer or shutdown";
  } else {
    r.error = CommandError::kDrainTimeout;
    r.message = std::to_string(left) + " transaction(s) still running after " +
                ms_string(drain_timeout) + " ms (policy " + std::string(to_string(policy)) +
                "); resumed on the current backend";
  }
  do_open_gate(&r, to_string(r.error));
  return false;
}

void CutoverEngine::do_open_gate(CommandResult* r, std::string_view reason) {
  int held = dp_.held_clients();
  dp_.open_gate();
  Millis paused{0};
  {
    std::lock_guard lock(mu_);
    if (gate_closed_at_) paused = to_ms(Clock::now() - *gate_closed_at_);
    gate_closed_at_.reset();
    draining_.store(false);
    set_state_locked(CutoverState::kRunning);
  }
  // The clients released now get their answers in the next milliseconds: wait for them
  // (bounded) so that the answer to this command says what they waited. Not at shutdown.
  ClientWaits waits =
      dp_.client_waits(reason == "shutdown" ? Millis{0} : options_.client_wait_settle);
  {
    std::lock_guard lock(mu_);
    last_gate_closed_ = paused;
    last_client_waits_ = waits;
  }
  if (observer_ != nullptr) observer_->pause_ended(paused, waits);
  if (r != nullptr) {
    r->pause = paused;
    r->held_clients = held;
    r->client_waits = waits;
  }
  log::info("cutover_resumed",
            {{"reason", std::string(reason)},
             {"gate_closed_ms", ms_string(paused)},
             {"held_clients", std::to_string(held)},
             {"client_wait_worst_ms", ms_string(Millis{static_cast<long>(waits.worst_ms + 0.5)})},
             {"client_wait_p99_ms", ms_string(Millis{static_cast<long>(waits.p99_ms + 0.5)})},
             {"clients_answered", std::to_string(waits.answered)}});
}

CommandResult CutoverEngine::pause(const PauseRequest& request) {
  CommandSlot slot(*this, "pause");
  if (!slot.held()) return finish(slot.refusal("pause"));
  CommandResult r;
  r.command = "pause";
  CutoverState s;
  {
    std::lock_guard lock(mu_);
    s = state_;
  }
  if (s == CutoverState::kPaused) {
    // Idempotent: a repeated pause neither re-drains nor extends the dead-man timer, so a
    // looping controller cannot keep the application frozen.
    r.message = "already paused";
    return finish(std::move(r));
  }
  r.changed = do_pause(request, r);
  return finish(std::move(r));
}

CommandResult CutoverEngine::resume() {
  bool preempted = false;
  {
    std::unique_lock lock(mu_);
    if (!command_.empty() && state_ == CutoverState::kPausing && !stopping_) {
      // RESUME during a drain wins: the pause (or flip) gives up and reopens the gate.
      preempt_ = true;
      preempted = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return command_.empty(); });
    }
  }
  CommandSlot slot(*this, "resume");
  if (!slot.held()) return finish(slot.refusal("resume"));
  CommandResult r;
  r.command = "resume";
  bool closed;
  {
    std::lock_guard lock(mu_);
    closed = gate_closed_at_.has_value();
  }
  if (closed) {
    do_open_gate(&r, "resume");
    r.changed = true;
  } else {
    r.changed = preempted;
    r.message = preempted ? "pause interrupted; running" : "already running";
  }
  return finish(std::move(r));
}

CommandResult CutoverEngine::flip(const std::string& backend, std::uint64_t expected_epoch) {
  CommandSlot slot(*this, "flip");
  if (!slot.held()) return finish(slot.refusal("flip"));
  return finish(do_flip("flip", backend, expected_epoch));
}

CommandResult CutoverEngine::follow(const std::string& backend, std::uint64_t epoch) {
  CommandSlot slot(*this, "follow");
  if (!slot.held()) return finish(slot.refusal("follow"));
  std::uint64_t current;
  {
    std::lock_guard lock(mu_);
    current = epoch_;
  }
  if (epoch <= current) {
    CommandResult r;
    r.command = "follow";
    r.message = "already at epoch " + std::to_string(current) + " (the authority says " +
                std::to_string(epoch) + ")";
    return finish(std::move(r));
  }
  return finish(do_flip("follow", backend, current, epoch));
}

CommandResult CutoverEngine::revert(std::optional<std::uint64_t> expected_epoch) {
  CommandSlot slot(*this, "revert");
  if (!slot.held()) return finish(slot.refusal("revert"));
  std::string target;
  std::uint64_t epoch;
  {
    std::lock_guard lock(mu_);
    target = previous_backend_;
    epoch = epoch_;
    if (target.empty() && options_.backends.size() == 2) {
      target = options_.backends[0] == backend_ ? options_.backends[1] : options_.backends[0];
    }
  }
  if (target.empty() || target == backend_) {
    CommandResult r;
    r.command = "revert";
    r.error = CommandError::kNoPreviousBackend;
    r.message = "no previous backend to revert to";
    return finish(std::move(r));
  }
  return finish(do_flip("revert", target, expected_epoch.value_or(epoch)));
}

CommandResult CutoverEngine::do_flip(const std::string& command, const std::string& backend,
                                     std::uint64_t expected_epoch,
                                     std::optional<std::uint64_t> to_epoch) {
  CommandResult r;
  r.command = command;
  if (!known_backend(backend)) {
    r.error = CommandError::kUnknownBackend;
    r.message = "backend '" + backend + "' is not configured";
    return r;
  }
  std::string old_backend;
  std::uint64_t epoch;
  CutoverState state;
  {
    std::lock_guard lock(mu_);
    old_backend = backend_;
    epoch = epoch_;
    state = state_;
  }
  if (backend == old_backend && to_epoch) {
    // Following an authority that names the backend already active: only the epoch moves.
    if (!store_.persist(backend, *to_epoch)) {
      r.error = CommandError::kPersistFailed;
      r.message = "could not persist epoch " + std::to_string(*to_epoch);
      return r;
    }
    {
      std::lock_guard lock(mu_);
      epoch_ = *to_epoch;
    }
    dp_.retarget(backend, *to_epoch);
    if (observer_ != nullptr) observer_->epoch_changed(*to_epoch);
    if (state != CutoverState::kRunning) do_open_gate(&r, command);
    r.changed = true;
    r.message = "on " + backend + " at epoch " + std::to_string(*to_epoch);
    return r;
  }
  if (backend == old_backend && expected_epoch + 1 == epoch) {
    // The repeat of the flip that made this epoch (a controller retrying after a lost
    // answer): done already, touch nothing.
    r.message = "already flipped to " + backend + " at epoch " + std::to_string(epoch);
    return r;
  }
  if (expected_epoch != epoch) {
    r.error = CommandError::kStaleEpoch;
    r.message = "expected epoch " + std::to_string(expected_epoch) + " but the current epoch is " +
                std::to_string(epoch);
    return r;
  }
  if (backend == old_backend) {
    // Flip to the active backend: no new epoch; if paused, it means "carry on here".
    if (state != CutoverState::kRunning) {
      do_open_gate(&r, "flip to the active backend");
      r.changed = true;
    }
    r.message = backend + " is already the active backend";
    return r;
  }

  const bool was_running = state == CutoverState::kRunning;
  if (was_running && options_.prewarm_on_flip) {
    auto t = Clock::now();
    bool warmed = dp_.prewarm(backend, options_.prewarm_timeout, false);
    r.prewarm = to_ms(Clock::now() - t);
    if (!warmed) {
      r.error = CommandError::kPrewarmFailed;
      r.message = "could not open connections to " + backend + "; nothing changed";
      return r;
    }
  }
  if (was_running && !do_pause({}, r)) return r;  // the gate is open again, error is set

  const auto flip_start = Clock::now();
  {
    std::lock_guard lock(mu_);
    set_state_locked(CutoverState::kFlipping);
  }
  r.unmovable = dp_.unmovable_sessions();
  if (!r.unmovable.empty()) {
    if (options_.unmovable_policy == UnmovablePolicy::kBlock) {
      r.error = CommandError::kUnmovableSessions;
      r.message = std::to_string(r.unmovable.size()) +
                  " session(s) hold state that cannot move; resumed on " + old_backend;
      do_open_gate(&r, "unmovable sessions");
      return r;
    }
    log::warn("cutover_terminating_unmovable", {{"sessions", std::to_string(r.unmovable.size())}});
  }

  const std::uint64_t new_epoch = to_epoch.value_or(epoch + 1);
  // Persist first: a proxy restarted after this point must come back on the new backend, never
  // the old one (docs/cutover.md, "Persistence").
  if (!store_.persist(backend, new_epoch)) {
    log::error("cutover_persist_failed",
               {{"backend", backend}, {"epoch", std::to_string(new_epoch)}});
    r.error = CommandError::kPersistFailed;
    r.message = "could not persist the new backend; resumed on " + old_backend;
    do_open_gate(&r, "persist failed");
    return r;
  }
  if (!dp_.retarget(backend, new_epoch)) {
    // The state file already names the new backend: write the old one back under a newer epoch
    // (epochs only grow, so no controller's view of new_epoch can act on this state).
    const std::uint64_t rollback_epoch = new_epoch + 1;
    bool persisted = store_.persist(old_backend, rollback_epoch);
    dp_.retarget(old_backend, rollback_epoch);
    log::error("cutover_retarget_failed", {{"backend", backend},
                                           {"rolled_back_to", old_backend},
                                           {"rollback_persisted", persisted ? "true" : "false"}});
    {
      std::lock_guard lock(mu_);
      epoch_ = persisted ? rollback_epoch : new_epoch;
    }
    if (observer_ != nullptr) observer_->epoch_changed(persisted ? rollback_epoch : new_epoch);
    r.error = CommandError::kRetargetFailed;
    r.message = "could not switch to " + backend + "; resumed on " + old_backend +
                (persisted ? "" : " (WARNING: the state file still names " + backend + ")");
    do_open_gate(&r, "retarget failed");
    return r;
  }
  {
    std::lock_guard lock(mu_);
    previous_backend_ = old_backend;
    backend_ = backend;
    epoch_ = new_epoch;
  }
  if (observer_ != nullptr) observer_->active_changed(backend, new_epoch);
  do_open_gate(&r, command);
  r.flip = to_ms(Clock::now() - flip_start);
  r.changed = true;
  if (observer_ != nullptr) observer_->flip_done(r.flip);
  log::info("cutover_flipped",
            {{"from", old_backend},
             {"to", backend},
             {"epoch", std::to_string(new_epoch)},
             {"drain_ms", ms_string(r.drain)},
             {"flip_ms", ms_string(r.flip)},
             {"gate_closed_ms", ms_string(r.pause)},
             {"held_clients", std::to_string(r.held_clients)},
             {"client_wait_worst_ms",
              ms_string(Millis{static_cast<long>(r.client_waits.worst_ms + 0.5)})}});
  return r;
}

CommandResult CutoverEngine::set_read_only(bool enabled) {
  CommandSlot slot(*this, "readonly");
  if (!slot.held()) return finish(slot.refusal("readonly"));
  CommandResult r;
  r.command = "readonly";
  // Always forwarded (idempotent) so the data plane cannot drift from what status() says.
  dp_.set_read_only(enabled);
  {
    std::lock_guard lock(mu_);
    r.changed = read_only_ != enabled;
    read_only_ = enabled;
  }
  if (observer_ != nullptr) observer_->read_only_changed(enabled);
  log::info("cutover_read_only", {{"enabled", enabled ? "true" : "false"}});
  return finish(std::move(r));
}

CommandResult CutoverEngine::prewarm(const std::string& backend, std::optional<Millis> timeout,
                                     bool writable) {
  CommandSlot slot(*this, "prewarm");
  if (!slot.held()) return finish(slot.refusal("prewarm"));
  CommandResult r;
  r.command = "prewarm";
  if (!known_backend(backend)) {
    r.error = CommandError::kUnknownBackend;
    r.message = "backend '" + backend + "' is not configured";
    return finish(std::move(r));
  }
  auto t = Clock::now();
  bool ok = dp_.prewarm(backend, timeout.value_or(options_.prewarm_timeout), writable);
  r.prewarm = to_ms(Clock::now() - t);
  r.changed = ok;
  if (!ok) {
    r.error = CommandError::kPrewarmFailed;
    r.message = "could not open connections to " + backend;
  }
  return finish(std::move(r));
}

CutoverEngine::Position CutoverEngine::position() const {
  std::lock_guard lock(mu_);
  return Position{state_, backend_, epoch_};
}

CutoverStatus CutoverEngine::status() const {
  CutoverStatus s;
  {
    std::lock_guard lock(mu_);
    s.state = state_;
    s.backend = backend_;
    s.previous_backend = previous_backend_;
    s.epoch = epoch_;
    s.read_only = read_only_;
    s.command = command_;
    s.hold = hold_;
    s.last_gate_closed = last_gate_closed_;
    s.last_client_waits = last_client_waits_;
    if (gate_closed_at_) {
      auto now = Clock::now();
      s.paused_for = to_ms(now - *gate_closed_at_);
      s.dead_man_remaining = std::max(Millis{0}, to_ms(dead_man_deadline_ - now));
    }
  }
  s.backends = options_.backends;
  s.held_clients = dp_.held_clients();
  s.transactions_in_flight = dp_.transactions_in_flight();
  s.pinned_sessions = dp_.pinned_sessions();
  s.unmovable = dp_.unmovable_sessions();
  return s;
}

bool CutoverEngine::try_hold(const std::string& reason, std::string& why_not) {
  std::lock_guard lock(mu_);
  if (stopping_) {
    why_not = "the proxy is shutting down";
  } else if (!command_.empty()) {
    why_not = "a cutover command is running (" + command_ + "); retry when it is done";
  } else if (state_ != CutoverState::kRunning) {
    why_not =
        std::string("the gate is closed (") + std::string(to_string(state_)) + "); resume first";
  } else if (!hold_.empty()) {
    why_not = hold_;
  } else {
    hold_ = reason;
    return true;
  }
  return false;
}

void CutoverEngine::hold(const std::string& reason) {
  std::lock_guard lock(mu_);
  hold_ = reason;
}

void CutoverEngine::release_hold() {
  std::lock_guard lock(mu_);
  hold_.clear();
}

bool CutoverEngine::wait_for_state(CutoverState state, Millis timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return state_ == state; });
}

void CutoverEngine::dead_man_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!gate_closed_at_) {
      cv_.wait(lock);
      continue;
    }
    if (Clock::now() < dead_man_deadline_) {
      cv_.wait_until(lock, dead_man_deadline_);
      continue;
    }
    if (command_.empty()) {
      // Paused and nobody came back: the controller died or lost the network. Resume on the
      // backend that is active; an application is never frozen for longer than max_pause.
      command_ = "dead_man";
      Millis paused = to_ms(Clock::now() - *gate_closed_at_);
      std::string backend = backend_;
      lock.unlock();
      log::warn("cutover_dead_man_resume",
                {{"reason", "paused longer than max_pause without flip or resume"},
                 {"paused_ms", ms_string(paused)},
                 {"backend", backend}});
      if (observer_ != nullptr) observer_->command_finished("dead_man", "ok");
      do_open_gate(nullptr, "dead-man timer");
      lock.lock();
      command_.clear();
      cv_.notify_all();
      if (observer_ != nullptr) {
        // After the slot is free: a listener may send a command (a fleet member asks the
        // databases where the fleet went meanwhile, and follows).
        lock.unlock();
        observer_->dead_man_resumed(backend);
        lock.lock();
      }
      continue;
    }
    if (state_ == CutoverState::kPausing && !preempt_) {
      // A drain longer than max_pause (a per-request override): make it give up.
      preempt_ = true;
      cv_.notify_all();
    }
    // A command is running (a flip persisting, say): it reopens the gate itself or, if it
    // leaves the proxy paused, we get here again when it ends.
    cv_.wait(lock);
  }
}

}  // namespace pgcutover::proxy
