// pgcutoverctl: the operator CLI (see docs/cli.md, or pgcutoverctl --help).
#include <iostream>
#include <string>
#include <vector>

#include "control/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return pgcutover::control::run_cli(args, std::cout, std::cerr);
}
