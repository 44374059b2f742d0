// The four sessions a cutover run works with: the application role's on each side (fence,
// barrier, sequences, smoke test) and the "admin" ones for replication DDL
// (--source-subscriber-url / --subscriber-url; the configured URL when not given).
#pragma once

#include <optional>

#include "control/command/context.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct FlipConnections {
  std::optional<PgConn> source, target, source_admin, target_admin;
};

// Opens all four, each writable whatever its role's defaults say (a session opened while its
// role is fenced starts read-only; the controller's own must write). false: a connection or an
// option failed, and `ctx` reported it.
bool connect_flip_sides(CommandContext& ctx, FlipConnections& out);

}  // namespace pgcutover::control
