// What the source's role may do, shared by preflight (which judges every method by it) and
// `replicate start --method logical` (which refuses what is impossible).
#pragma once

#include <string>

#include "control/db/pg_conn.h"

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

}  // namespace pgcutover::control
