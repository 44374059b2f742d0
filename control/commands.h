// One entry point per pgcutoverctl command; each lives in the file named after its domain
// (preflight.cpp, schema.cpp, replication_*.cpp, lag.cpp, validate.cpp, status.cpp).
// Each returns the process exit code (control/exit_codes.h).
#pragma once

#include "control/context.h"

namespace pgcutover::control {

int cmd_preflight(CommandContext& ctx);
int cmd_schema_copy(CommandContext& ctx);
int cmd_schema_diff(CommandContext& ctx);
int cmd_replicate_start(CommandContext& ctx);
int cmd_replicate_status(CommandContext& ctx);
int cmd_replicate_stop(CommandContext& ctx);
int cmd_replicate_apply(CommandContext& ctx);  // trigger method: replication_trigger.cpp
int cmd_lag(CommandContext& ctx);
int cmd_validate(CommandContext& ctx);
int cmd_status(CommandContext& ctx);
// The cutover (flip.cpp, finalize.cpp): issue 7.
int cmd_flip(CommandContext& ctx);
int cmd_revert(CommandContext& ctx);
int cmd_recover(CommandContext& ctx);
int cmd_finalize(CommandContext& ctx);

}  // namespace pgcutover::control
