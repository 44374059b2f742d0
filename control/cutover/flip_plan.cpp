#include "control/cutover/flip_plan.h"

namespace pgcutover::control {

const char* step_name(FlipStep s) {
  switch (s) {
    case FlipStep::kPreconditions:
      return "preconditions";
    case FlipStep::kPause:
      return "pause";
    case FlipStep::kFence:
      return "fence";
    case FlipStep::kCatchUp:
      return "catch_up";
    case FlipStep::kSequences:
      return "sequences";
    case FlipStep::kReplication:
      return "replication";
    case FlipStep::kFlip:
      return "flip";
    case FlipStep::kResume:
      return "resume";
    case FlipStep::kSubscribe:
      return "subscribe";
  }
  return "?";
}

std::optional<FlipStep> parse_step(std::string_view name) {
  for (FlipStep s : kAllSteps)
    if (name == step_name(s)) return s;
  return std::nullopt;
}

const char* direction_name(Direction d) {
  return d == Direction::kForward ? "forward" : "backward";
}

std::optional<Direction> parse_direction(std::string_view name) {
  if (name == "forward") return Direction::kForward;
  if (name == "backward") return Direction::kBackward;
  return std::nullopt;
}

std::string from_backend(Direction d) {
  return d == Direction::kForward ? "source" : "target";
}
std::string to_backend(Direction d) {
  return d == Direction::kForward ? "target" : "source";
}

const char* recovery_action_name(RecoveryAction a) {
  switch (a) {
    case RecoveryAction::kNothing:
      return "nothing";
    case RecoveryAction::kRollBack:
      return "roll_back";
    case RecoveryAction::kFinish:
      return "finish";
  }
  return "?";
}

RecoveryAction decide_recovery(const JournalSummary& s) {
  if (!s.have_run || s.ended) return RecoveryAction::kNothing;
  if (s.last_started && *s.last_started >= FlipStep::kFlip) return RecoveryAction::kFinish;
  if (s.last_done && *s.last_done >= FlipStep::kFlip) return RecoveryAction::kFinish;
  return RecoveryAction::kRollBack;
}

std::vector<FlipStep> steps_to_finish(const JournalSummary& s) {
  if (decide_recovery(s) != RecoveryAction::kFinish) return {};
  // The flip is repeated on every proxy (idempotent by epoch: a proxy already on the
  // destination answers changed=false), everything is resumed, and the reverse subscription
  // made if it is not there yet.
  return {FlipStep::kFlip, FlipStep::kResume, FlipStep::kSubscribe};
}

std::vector<FlipStep> steps_to_undo(const JournalSummary& s) {
  if (decide_recovery(s) != RecoveryAction::kRollBack) return {};
  FlipStep last = s.last_started.value_or(s.last_done.value_or(FlipStep::kPreconditions));
  if (s.last_done && *s.last_done > last) last = *s.last_done;
  std::vector<FlipStep> undo;
  // Newest first; catch-up and sequences change nothing that must be undone (the destination
  // is not serving; a sequence moved forward is harmless). The fence is undone once the pause
  // started: lifting a fence that never came is harmless (the roles of a serving side are
  // writable), and the fence's start then needs no fsync of its own inside the pause.
  if (last >= FlipStep::kReplication) undo.push_back(FlipStep::kReplication);
  if (last >= FlipStep::kPause) {
    undo.push_back(FlipStep::kFence);
    undo.push_back(FlipStep::kPause);
  }
  return undo;
}

bool start_needs_sync(FlipStep s) {
  // Kept in step with steps_to_undo and steps_to_finish: the fence is undone from the pause's
  // start on, and neither lists catch-up or sequences.
  return s != FlipStep::kFence && s != FlipStep::kCatchUp && s != FlipStep::kSequences;
}

}  // namespace pgcutover::control
