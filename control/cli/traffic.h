// pause and resume: hold every proxy's new transactions (admin API and fleet alike) and let
// them go again, outside a flip: for a maintenance step on the database (a failover, a
// parameter change) that should cost the application a wait instead of errors.
#pragma once

#include "control/command/context.h"

namespace pgcutover::control {

int cmd_pause(CommandContext& ctx);
int cmd_resume(CommandContext& ctx);

}  // namespace pgcutover::control
