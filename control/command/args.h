// Parsed command line of one pgcutoverctl invocation: the options the user gave, by long name.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pgcutover::control {

class ParsedArgs {
 public:
  void add(const std::string& name, std::string value) { options_[name].push_back(value); }
  bool has(const std::string& name) const { return options_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = {}) const {
    auto it = options_.find(name);
    return it == options_.end() || it->second.empty() ? fallback : it->second.back();
  }
  std::vector<std::string> all(const std::string& name) const {
    auto it = options_.find(name);
    return it == options_.end() ? std::vector<std::string>{} : it->second;
  }

 private:
  std::map<std::string, std::vector<std::string>> options_;
};

}  // namespace pgcutover::control
