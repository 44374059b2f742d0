// Replication lag as one plain struct, measured the same way by `pgcutoverctl lag`, by
// `status`, and (later) by the proxy's metrics exporter, which calls measure_lag() with its
// own connections and exports bytes/seconds as pgcutover_replication_lag_{bytes,seconds}.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

// Object names shared by every command that creates or reads logical replication.
inline constexpr const char* kPublication = "pgcutover";
inline constexpr const char* kInsertOnlyPublication = "pgcutover_insert_only";
inline constexpr const char* kSubscription = "pgcutover";
inline constexpr const char* kSlot = "pgcutover";

struct ReplicationLag {
  std::string method;  // logical | external | dump | trigger
  // "forward" (source -> target, before the cutover) or "reverse" (target -> source, the way
  // back a flip builds); empty where the method has no direction.
  std::string direction;
  bool ok = false;                // a figure was measured
  std::string error;              // why not, with what to do
  std::optional<int64_t> bytes;   // logical: source WAL not yet confirmed by the subscriber
  std::optional<double> seconds;  // logical: walsender replay_lag; external: heartbeat trip
  std::string seconds_from;       // "replay_lag", "caught_up", "latest_end_time", "heartbeat"
  std::string source_lsn;         // logical: pg_current_wal_lsn() on the source
  std::string confirmed_flush_lsn;
  bool slot_active = false;
  std::optional<int64_t> pending_changes;  // trigger: log entries not yet applied
  std::chrono::system_clock::time_point measured_at;
};

// `target` may be the subscriber connection. For "external" this writes one heartbeat row on
// the source and waits for it on the target for at most `heartbeat_timeout`.
ReplicationLag measure_lag(PgConn& source, PgConn& target, const std::string& method,
                           std::chrono::milliseconds heartbeat_timeout = std::chrono::seconds(30));

boost::json::object to_json(const ReplicationLag& lag);
std::string describe(const ReplicationLag& lag);  // "1.2 MB, 0.35s (replay_lag)"

}  // namespace pgcutover::control
