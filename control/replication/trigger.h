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

namespace pgcutover::control {

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
TriggerBacklog trigger_backlog(PgConn& source);

// Drops every trigger, function and log of the method from the source, and the pgcutover
// schema when nothing else is left in it (and the applied-rows table on `target` when given).
// Idempotent: nothing installed is not a problem. False with `problems` appended on failure.
bool remove_trigger_capture(PgConn& source, PgConn* target, std::vector<std::string>& problems);

// Applies until the log is empty (taking the apply lock first), bounded by `timeout`.
// `applied` counts the entries applied. False with `error` set on timeout or failure.
bool trigger_drain(PgConn& source, PgConn& target, std::chrono::milliseconds timeout,
                   int64_t& applied, std::string& error);

}  // namespace pgcutover::control
