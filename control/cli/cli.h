// pgcutoverctl's command line: the table of commands and options (which is also the --help
// text), the parser, and dispatch. Usage errors exit 2 and say what to type instead.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace pgcutover::control {

// Runs one invocation; returns the exit code. Streams are parameters so tests can capture.
int run_cli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err);

}  // namespace pgcutover::control
