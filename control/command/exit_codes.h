// The exit-code contract of every pgcutoverctl command (documented in docs/cli.md).
#pragma once

namespace pgcutover::control {

inline constexpr int kExitOk = 0;           // everything checked out / command done
inline constexpr int kExitCheckFailed = 1;  // a check failed, or a bounded wait ran out
inline constexpr int kExitUsage = 2;        // bad usage, bad config, or a database unreachable

}  // namespace pgcutover::control
