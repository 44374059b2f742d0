#include "control/command/check.h"

#include <ostream>

#include "control/command/exit_codes.h"

namespace pgcutover::control {

const char* to_string(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "fail";
  }
  return "fail";
}

boost::json::object to_json(const Check& c) {
  boost::json::object o;
  o["id"] = c.id;
  o["status"] = to_string(c.status);
  o["found"] = c.found;
  o["fix"] = c.fix;
  if (!c.data.empty()) o["data"] = c.data;
  return o;
}

void print_check(std::ostream& os, const Check& c) {
  const char* tag = c.status == CheckStatus::kPass   ? "PASS"
                    : c.status == CheckStatus::kWarn ? "WARN"
                                                     : "FAIL";
  std::string id = c.id;
  if (id.size() < 22) id.resize(22, ' ');
  os << tag << "  " << id << " " << c.found << "\n";
  if (!c.fix.empty()) os << "      " << std::string(22, ' ') << " fix: " << c.fix << "\n";
}

int exit_code_for(const std::vector<Check>& checks) {
  for (const auto& c : checks)
    if (c.status == CheckStatus::kFail) return kExitCheckFailed;
  return kExitOk;
}

}  // namespace pgcutover::control
