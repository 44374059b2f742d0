// fleet: the proxies that take their commands through the databases (docs/fleet.md).
//   pgcutoverctl fleet setup   create the control schema in the source and the target
//   pgcutoverctl fleet         list the members (live and vanished) and the authority record
#pragma once

#include "control/command/context.h"

namespace pgcutover::control {

int cmd_fleet(CommandContext& ctx);
int cmd_fleet_setup(CommandContext& ctx);

}  // namespace pgcutover::control
