// Which run `recover` works on. The journal is a file on the controller's machine; with a
// fleet channel the databases also hold the last run (pgcutover.cutover_run), so a controller
// that died on another machine can be recovered from here, and a run of this journal that
// another controller finished (or that a newer run followed) is left alone. Pure logic over
// what was read, unit-tested on its own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/command/fleet_channel.h"
#include "control/cutover/flip_plan.h"
#include "control/cutover/journal.h"

namespace pgcutover::control {

struct RecoverySource {
  JournalSummary js;
  boost::json::object begin;    // method, fence_roles
  std::optional<bool> reverse;  // the plan's reverse-replication decision
  std::string where;            // "the journal FILE" | "the fleet's databases (...)"
};

// The journal's last run.
RecoverySource journal_source(const std::vector<JournalRecord>& records,
                              const std::string& journal_path);

struct RecoveryChoice {
  RecoverySource source;  // decide_recovery(source.js) says what to do
  // The journal's run is over elsewhere: journal it ended with `marked_outcome`
  // ("ended_elsewhere", "superseded") under `marked_run`, and tell the operator `marked`.
  std::string marked, marked_run, marked_outcome;
};

// The journal's run unless the databases say it is over; then, or when the journal has nothing
// unfinished, the databases' unfinished run: its flip step had started when the authority (the
// newest epoch of either database) names its destination, and before that every step up to
// the reverse slot counts as started (each undo is idempotent).
RecoveryChoice choose_recovery(RecoverySource journal,
                               const std::optional<CutoverRunRecord>& db_run,
                               const std::vector<FleetAuthority>& authority);

}  // namespace pgcutover::control
