// One cutover at a time. `flip`, `revert`, `recover` and `finalize` (dry runs too: their prewarm
// takes the proxies' command slot) hold the cutover lock in the source and in the target for as
// long as they run: the session advisory lock (fleet::kFleetLockClass, kCutoverLockKey), in one
// session per database. A second controller (another operator, another journal) is refused
// before it does anything, with who holds the lock; without it, two runs that both passed step 1
// would both pause (a pause is idempotent), and one's rollback would resume or undo the other's
// flip. The lock's class makes the session a control session, which the fence spares.
//
// A controller that dies releases the lock with its sessions: at once when its process ends,
// within about 11 s after a network cut (the sessions set short server-side TCP keepalives).
// `recover` therefore waits up to kRecoverLockWait for the lock; the others do not wait.
#pragma once

#include <chrono>

#include "control/command/context.h"

namespace pgcutover::control {

// The lock's second key. Members' lock keys are 1 and more, controllers share 0.
inline constexpr int kCutoverLockKey = -1;
inline constexpr std::chrono::seconds kRecoverLockWait{15};

// Runs `handler` holding the cutover lock in every configured database that answers (one that
// does not is left to the command, which reports it). Refuses with kExitCheckFailed, and runs
// nothing, when another session holds the lock in either database after `wait`.
int with_cutover_lock(CommandContext& ctx, const char* command, int (*handler)(CommandContext&),
                      std::chrono::seconds wait = std::chrono::seconds(0));

}  // namespace pgcutover::control
