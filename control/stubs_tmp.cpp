#include "control/commands.h"
#include "control/exit_codes.h"
namespace pgcutover::control {
#define STUB(n)                                             \
  int n(CommandContext& ctx) {                              \
    return ctx.fail(kExitUsage, #n " not implemented yet"); \
  }

STUB(cmd_replicate_start)
STUB(cmd_replicate_status)
STUB(cmd_replicate_stop)
STUB(cmd_lag)
STUB(cmd_validate)
STUB(cmd_status)
}  // namespace pgcutover::control
