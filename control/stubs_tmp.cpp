#include "control/commands.h"
#include "control/exit_codes.h"
namespace pgcutover::control {
#define STUB(n)                                             \
  int n(CommandContext& ctx) {                              \
    return ctx.fail(kExitUsage, #n " not implemented yet"); \
  }

STUB(cmd_status)
}  // namespace pgcutover::control
