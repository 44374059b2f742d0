// The cutover as a list of named steps, and the one decision `recover` makes from a journal:
// finish (roll forward) or roll back. Pure logic, no I/O, so it is unit-tested on its own.
//
// Why the way back is prepared before the flip, which may look backwards: the proxy's
// /v1/flip from PAUSED opens the gate as part of the same command (docs/cutover.md), so a
// flipped proxy's clients write to the new side at once. The reverse replication slot must
// exist before the first such write, or `revert` would lose it; so step 6 creates it while
// every proxy is still paused. The rest of the swap (drop the old subscription and its slot,
// subscribe the side left behind to the new slot) takes hundreds of milliseconds and holds no
// write: it runs last (step 9), with traffic already on the destination, and the slot keeps
// every write made there meanwhile.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgcutover::control {

enum class FlipStep {
  kPreconditions = 1,  // proxies RUNNING on one epoch, lag, validation age, prewarm
  kPause = 2,          // two-phase: every proxy acknowledges PAUSED
  kFence = 3,          // the side being left: app roles read-only, their sessions ended
  kCatchUp = 4,        // fixed-point barrier: L read once after the fence, wait for it
  kSequences = 5,      // setval on the destination, never backwards
  kReplication = 6,    // disable the old direction, create the reverse slot (without one,
                       // the flip is the point of no return)
  kFlip = 7,           // /v1/flip on every proxy (each opens its gate), smoke test
  kResume = 8,         // resume any proxy still paused; report the write pause
  kSubscribe = 9,      // drop the old direction, subscribe to the reverse slot (outside the pause)
};

inline constexpr FlipStep kAllSteps[] = {
    FlipStep::kPreconditions, FlipStep::kPause,     FlipStep::kFence,
    FlipStep::kCatchUp,       FlipStep::kSequences, FlipStep::kReplication,
    FlipStep::kFlip,          FlipStep::kResume,    FlipStep::kSubscribe};

const char* step_name(FlipStep s);  // "preconditions", "pause", ...
std::optional<FlipStep> parse_step(std::string_view name);

// Which way traffic moves: forward is source -> target, backward (revert) target -> source.
enum class Direction { kForward, kBackward };
const char* direction_name(Direction d);  // "forward" | "backward"
std::optional<Direction> parse_direction(std::string_view name);
// The backend traffic leaves and the one it goes to ("source"/"target").
std::string from_backend(Direction d);
std::string to_backend(Direction d);

// What the journal says about one run, reduced to what recovery needs.
struct JournalSummary {
  bool have_run = false;
  bool ended = false;  // an "end" record exists: nothing to recover
  std::string run_id;
  Direction direction = Direction::kForward;
  std::optional<FlipStep> last_started;
  std::optional<FlipStep> last_done;
};

enum class RecoveryAction { kNothing, kRollBack, kFinish };
const char* recovery_action_name(RecoveryAction a);

// The rule (docs/runbook.md, "recover"): once the flip step has started, some proxy may be
// running on the destination with writes there, so going forward is the only move that
// never splits and never loses those writes: finish. Before it, nothing has run on the
// destination: roll back (resume on the side being left, undo the fence and the replication
// swap). A run that ended needs nothing.
RecoveryAction decide_recovery(const JournalSummary& s);

// The steps a recovery re-does when it finishes (from the flip on) and the undo list of a
// rollback (every step started, newest first). Only steps with an effect appear.
std::vector<FlipStep> steps_to_finish(const JournalSummary& s);
std::vector<FlipStep> steps_to_undo(const JournalSummary& s);

// Whether a step's "start" record must be on disk before the step runs. Not for the steps whose
// recovery is the same as the step before's (the fence, undone from the pause's start on;
// catch-up and sequences, which leave nothing to undo or finish): the next synced record
// carries theirs to disk. Each fsync inside the pause is time every held client waits.
bool start_needs_sync(FlipStep s);

}  // namespace pgcutover::control
