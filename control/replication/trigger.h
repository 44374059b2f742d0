// The trigger method: change capture that needs only table ownership, for sources
// such as Heroku Postgres that grant neither superuser nor REPLICATION.
//
//   start   install the log and per-table triggers on the source, then copy every table
//           from one exported snapshot (parallel workers) into the target.
//   apply   repeatedly: take a batch of changed keys from the log, make each target row
//           equal to the source's current row (upsert, or delete when gone), commit on the
//           target, THEN delete exactly those log entries on the source. Killing it loses
//           nothing; re-running continues.
//   stop    remove the triggers, functions and log from the source.
// The flip's catch-up barrier for this method is trigger_drain(): with the source fenced no
// new entries arrive, so draining the log to empty means the target has every write.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/command/context.h"
#include "control/replication/trigger_sql.h"

namespace pgcutover::control {

// The two ends of one direction of the method, for messages: where changes are captured (and
// the log lives) and where they are applied. Forward: source -> target; the way back after a
// flip: target -> source.
struct SideNames {
  std::string from = "source", to = "target";
};

int trigger_start(CommandContext& ctx);
int trigger_status(CommandContext& ctx);
int trigger_stop(CommandContext& ctx);

struct TriggerBacklog {
  bool ok = false;
  std::string error;
  int64_t pending = 0;        // log entries (keyed changes + insert-only rows) not applied
  double oldest_seconds = 0;  // age of the oldest pending entry, 0 when none
  std::string broken;         // "schema.table saw TRUNCATE" when capture is incomplete
};
// `side`: where the capture is ("source"; "target" for the way back), for messages.
TriggerBacklog trigger_backlog(PgConn& source, const std::string& side = "source");

// Drops every trigger, function and log of the method from the source, and the pgcutover
// schema when nothing else is left in it (and the applied-rows table on `target` when given).
// Idempotent: nothing installed is not a problem. False with `problems` appended on failure.
bool remove_trigger_capture(PgConn& source, PgConn* target, std::vector<std::string>& problems);

// What a drain or an arm inside the write pause can be handed instead of asking again: the
// captured tables read before the pause, and whether these sessions are already the method's.
struct DrainStart {
  const std::vector<CapturedTable>* tables = nullptr;
  bool sessions_prepared = false;
};
// The tables handed in `start`, or `side`'s read now into `loaded`; null with `error` set when
// they cannot be read.
const std::vector<CapturedTable>* captured_tables(PgConn& side, const std::string& side_name,
                                                  const DrainStart& start,
                                                  std::optional<std::vector<CapturedTable>>& loaded,
                                                  std::string& error);

// Where a drain's time went, for the flip's step data (inside the write pause every round
// trip counts): preparing the sessions, waiting for the apply lock, the apply rounds, and the
// check that the capture is still whole.
struct DrainTimes {
  double prepare_ms = 0, lock_ms = 0, rounds_ms = 0, check_ms = 0;
  int rounds = 0;
};

// Applies until the log is empty (taking the apply lock first), bounded by `timeout`.
// `applied` counts the entries applied. False with `error` set on timeout or failure.
bool trigger_drain(PgConn& source, PgConn& target, std::chrono::milliseconds timeout,
                   int64_t& applied, std::string& error, const SideNames& names = {},
                   DrainStart start = {}, DrainTimes* times = nullptr);

// The way back. A flip with this method installs the same capture on the destination ahead
// of the pause (install_way_back_capture, as the destination's owner role: nothing but
// ownership needed). It captures nothing that pgcutover's own apply writes (kApplyingSetting),
// so until the flip it holds nothing; inside the pause arm_trigger_capture() empties whatever
// it does hold (a write that bypassed the method), so that it holds exactly the writes made
// after the gate opens. `replicate apply --reverse` applies them to the fenced source, and a
// revert drains it like the forward flip drains the source's (the forward capture, still on
// the source, is armed the same way inside the revert's pause).
bool has_trigger_capture(PgConn& side);
bool install_way_back_capture(PgConn& destination, const std::string& name, std::string& error);
// Empties `side`'s logs (under the apply lock, bounded by `wait`) and clears broken marks;
// forgets the applied-rows records on `other`.
bool arm_trigger_capture(PgConn& side, PgConn& other, std::chrono::milliseconds wait,
                         const SideNames& names, std::string& error, DrainStart start = {});

}  // namespace pgcutover::control
