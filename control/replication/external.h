// The external method: replication run by another tool (AWS DMS, a hand-made subscription);
// pgcutover only measures it, with a heartbeat row in pgcutover.heartbeat on the source that
// the tool must replicate like any other table. The arrival time is taken on this machine's
// clock for both ends, so clock skew between the servers does not enter the figure.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

// CREATE SCHEMA pgcutover + heartbeat table (id int primary key, ts timestamptz, seq bigint).
bool ensure_heartbeat_table(PgConn& conn, PgError& error);

struct HeartbeatTrip {
  bool arrived = false;
  int64_t seq = 0;
  double seconds = 0;  // write on source -> visible on target
  std::string error;
};

// Writes seq+1 on the source, polls the target every 20 ms until it shows seq+1 or later.
HeartbeatTrip heartbeat_round_trip(PgConn& source, PgConn& target,
                                   std::chrono::milliseconds timeout);

}  // namespace pgcutover::control
