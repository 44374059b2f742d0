#include "control/command/version.h"

#ifndef PGCUTOVER_VERSION
#define PGCUTOVER_VERSION "0.1.0"
#endif

namespace pgcutover::control {

const char* version() {
  return PGCUTOVER_VERSION;
}

}  // namespace pgcutover::control
