#include "common/redact.h"

#include <regex>

namespace pgcutover {

std::string redact_url(std::string_view url) {
  // Hand-written rather than std::regex: this runs on error paths of the data plane, and
  // std::regex is slow and trips GCC's -Wmaybe-uninitialized under sanitizers.
  std::string out(url);
  // scheme://user:secret@host -> scheme://user:***@host
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    std::size_t start = scheme + 3;
    std::size_t at = out.find('@', start);
    std::size_t end_of_authority = out.find_first_of("/?# ", start);
    if (at != std::string::npos &&
        (end_of_authority == std::string::npos || at < end_of_authority)) {
      std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=secret or password = 'quoted secret' in key/value conninfo strings (any case)
  auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  static constexpr std::string_view kKey = "password";
  for (std::size_t i = 0; i + kKey.size() <= out.size(); ++i) {
    bool match = true;
    for (std::size_t k = 0; k < kKey.size() && match; ++k) match = lower(out[i + k]) == kKey[k];
    if (!match) continue;
    std::size_t j = i + kKey.size();
    while (j < out.size() && out[j] == ' ') ++j;
    if (j >= out.size() || out[j] != '=') continue;
    ++j;
    while (j < out.size() && out[j] == ' ') ++j;
    std::size_t end = j;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '\t' && out[end] != '&') ++end;
    }
    out.replace(j, end - j, "***");
    i = j + 2;
  }
  return out;
}

std::string redact(std::string_view text) {
  std::string out = redact_url(text);
  static const std::regex kPassword(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
  return std::regex_replace(out, kPassword, "$1***");
}

}  // namespace pgcutover
