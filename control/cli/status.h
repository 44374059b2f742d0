// `pgcutoverctl status`: one screen over everything (proxies, databases, replication, the last
// validation, the next safe step), so it sits in the top room beside the command table.
#pragma once

#include "control/command/context.h"

namespace pgcutover::control {

int cmd_status(CommandContext& ctx);

}  // namespace pgcutover::control
