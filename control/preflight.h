// preflight: everything worth knowing about the source and the target before replicating,
// as a list of checks with fixes. Read-only on both databases (the TLS check opens one extra
// connection with sslmode=disable and expects it to be refused).
#pragma once

#include <string>
#include <vector>

#include "control/check.h"
#include "control/pg_conn.h"
#include "control/settings.h"

namespace pgcutover::control {

// What the source allows, shared with `replicate start` (which refuses what is impossible).
struct SourceCapabilities {
  std::string wal_level;
  bool superuser = false;
  bool replication_role = false;
  bool owns_all_tables = true;
  int tables = 0;
  int free_replication_slots = 0;
  bool logical_possible() const {
    return wal_level == "logical" && (superuser || replication_role) &&
           (superuser || owns_all_tables) && free_replication_slots > 0;
  }
  // Why not, in one sentence (empty when possible).
  std::string logical_blockers(const std::string& role) const;
};

bool read_source_capabilities(PgConn& source, SourceCapabilities& caps, PgError& error);

// Can the target's role CREATE SUBSCRIPTION? (superuser on PostgreSQL <= 15; RDS grants it
// through rds_superuser; PostgreSQL 16 adds pg_create_subscription.)
bool target_can_subscribe(PgConn& target);

// `method` is "" (judge for any method), "logical", "external", "dump" or "trigger".
std::vector<Check> run_preflight(PgConn& source, PgConn& target, const ControlSettings& settings,
                                 const std::string& method,
                                 const std::optional<ConnSpec>& subscriber);

}  // namespace pgcutover::control
