// The orchestrated cutover shared by `flip` (source -> target), `revert` (target -> source)
// and `recover` (finish or roll back a run whose controller died). See docs/cli.md ("flip")
// and docs/runbook.md; the step list and the recovery rule are in flip_plan.h.
//
// Test hooks (documented in docs/cli.md, for the integration tests only):
//   PGCUTOVER_CRASH_AFTER_STEP=<step>   _exit(99) right after the step's "done" is journaled
//   PGCUTOVER_TEST_HOOK_BEFORE_STEP=<step>:<shell command>   run the command before the step
#pragma once

#include "control/command/context.h"
#include "control/cutover/flip_plan.h"

namespace pgcutover::control {

int run_cutover(CommandContext& ctx, Direction direction);
int run_recover(CommandContext& ctx);

// The commands (finalize.cpp): `flip`, `revert`, `recover`, `finalize`.
int cmd_flip(CommandContext& ctx);
int cmd_revert(CommandContext& ctx);
int cmd_recover(CommandContext& ctx);
int cmd_finalize(CommandContext& ctx);

}  // namespace pgcutover::control
