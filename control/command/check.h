// One finding of preflight (and of status): an id a script can match on, pass/warn/fail,
// what was found, and what to do about it.
#pragma once

#include <boost/json.hpp>
#include <iosfwd>
#include <string>
#include <vector>

namespace pgcutover::control {

enum class CheckStatus { kPass, kWarn, kFail };

const char* to_string(CheckStatus s);

struct Check {
  std::string id;  // stable, snake_case: "logical_replication", "primary_keys", ...
  CheckStatus status = CheckStatus::kPass;
  std::string found;         // what was seen, with numbers and names
  std::string fix;           // what to do; empty when nothing
  boost::json::object data;  // details for --json (lists of tables, versions, ...)
};

boost::json::object to_json(const Check& c);
// "PASS  id  found" + an indented "fix:" line; long lists wrapped.
void print_check(std::ostream& os, const Check& c);
// 1 when any check failed, else 0.
int exit_code_for(const std::vector<Check>& checks);

}  // namespace pgcutover::control
