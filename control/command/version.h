// The version both programs print (`pgcutoverctl --version`, `pgcutover-proxy --version`):
// the project's, from CMakeLists.txt.
#pragma once

namespace pgcutover::control {

const char* version();

}  // namespace pgcutover::control
