// `replicate start|status|stop`: dispatch to the method's file. Each method's functions
// take the command context and return the exit code.
#pragma once

#include "control/command/context.h"

namespace pgcutover::control {

int logical_start(CommandContext& ctx);
int logical_status(CommandContext& ctx);
int logical_stop(CommandContext& ctx);
int external_start(CommandContext& ctx);
int external_status(CommandContext& ctx);
int external_stop(CommandContext& ctx);
int dump_start(CommandContext& ctx);
int dump_status(CommandContext& ctx);

// Records (or with an empty method, forgets) the method on the target.
bool record_method(PgConn& target, const std::string& method, boost::json::object extra,
                   PgError& error);

// The commands: `replicate start|status|stop` (here), `replicate apply` (trigger
// method: trigger.cpp) and `lag` (lag.cpp).
int cmd_replicate_start(CommandContext& ctx);
int cmd_replicate_status(CommandContext& ctx);
int cmd_replicate_stop(CommandContext& ctx);
int cmd_replicate_apply(CommandContext& ctx);
int cmd_lag(CommandContext& ctx);

}  // namespace pgcutover::control
