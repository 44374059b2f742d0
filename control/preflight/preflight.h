// preflight: everything worth knowing about the source and the target before replicating,
// as a list of checks with fixes. Read-only on both databases (the TLS check opens one extra
// connection with sslmode=disable and expects it to be refused).
#pragma once

#include <string>
#include <vector>

#include "control/command/check.h"
#include "control/command/context.h"
#include "control/command/settings.h"
#include "control/db/capabilities.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

// `method` is "" (judge for any method) or a replication method's name.
std::vector<Check> run_preflight(PgConn& source, PgConn& target, const ControlSettings& settings,
                                 const std::string& method,
                                 const std::optional<ConnSpec>& subscriber);

// `pgcutoverctl preflight`.
int cmd_preflight(CommandContext& ctx);

}  // namespace pgcutover::control
