#include "proxy/pool/session_params.h"

#include <cctype>

#include "protocol/encoding_names.h"

namespace pgcutover::proxy {

bool GucNameLess::operator()(std::string_view a, std::string_view b) const {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    int ca = std::tolower(static_cast<unsigned char>(a[i]));
    int cb = std::tolower(static_cast<unsigned char>(b[i]));
    if (ca != cb) return ca < cb;
  }
  return a.size() < b.size();
}

namespace {
bool iequals(std::string_view a, std::string_view b) {
  GucNameLess less;
  return !less(a, b) && !less(b, a);
}
}  // namespace

bool is_tracked_reported(std::string_view name) {
  for (std::string_view n : {"application_name", "client_encoding", "DateStyle", "TimeZone",
                             "IntervalStyle", "standard_conforming_strings", "search_path"}) {
    if (iequals(n, name)) return true;
  }
  return false;
}

bool is_startup_only(std::string_view name) {
  return iequals(name, "user") || iequals(name, "database") || iequals(name, "replication") ||
         iequals(name, "options") || name.substr(0, 4) == "_pq_";
}

ParamMap startup_settings(const protocol::StartupPacket& startup) {
  ParamMap out;
  for (const auto& [name, value] : startup.params) {
    if (!is_startup_only(name)) out[name] = value;
  }
  // options: whitespace-separated, "\ " escapes a space (libpq's rule), items "-c name=value"
  // or "--name=value"; '-' in a name means '_'.
  std::string_view options = protocol::startup_param(startup, "options");
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    char c = options[i];
    if (c == '\\' && i + 1 < options.size()) {
      cur += options[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(cur);
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string item;
    if (words[i] == "-c" && i + 1 < words.size()) {
      item = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      item = words[i].substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      item = words[i].substr(2);
    } else {
      continue;  // other postgres switches are not settings we can carry
    }
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string name = item.substr(0, eq);
    for (char& ch : name) {
      if (ch == '-') ch = '_';
    }
    out[name] = item.substr(eq + 1);
  }
  // The server reports client_encoding by its own name ("utf-8" is answered "UTF8"); the
  // proxy answers the login itself, so it must too. An unknown name is left for the server to
  // refuse.
  if (auto it = out.find("client_encoding"); it != out.end()) {
    if (auto name = protocol::postgres_encoding_name(it->second)) it->second = std::string(*name);
  }
  return out;
}

bool is_plain_identifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
              (i > 0 && (std::isdigit(static_cast<unsigned char>(c)) || c == '.'));
    if (!ok) return false;
  }
  return true;
}

std::string quote_literal(std::string_view value) {
  // E'...' with both quote and backslash doubled means the same text whatever
  // standard_conforming_strings says.
  std::string out = "E'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  out += '\'';
  return out;
}

std::string build_sync_query(const ParamMap& desired, const ServerParams& server,
                             std::vector<std::string>& changed, std::vector<std::string>& reset) {
  std::string sql;
  for (const auto& [name, value] : desired) {
    if (!is_plain_identifier(name)) continue;
    const std::string* current = nullptr;
    if (auto it = server.reported.find(name); it != server.reported.end()) {
      current = &it->second;
    } else if (auto it2 = server.overrides.find(name); it2 != server.overrides.end()) {
      current = &it2->second;
    }
    if (current && *current == value) continue;
    sql += "SET " + name + " TO " + quote_literal(value) + ";";
    changed.push_back(name);
  }
  for (const auto& [name, value] : server.overrides) {
    if (desired.count(name) || !is_plain_identifier(name)) continue;
    sql += "RESET " + name + ";";
    reset.push_back(name);
  }
  return sql;
}

void DesiredSettings::rekey() {
  key.clear();
  for (const auto& [name, value] : params) {
    key += name;
    key += '\0';
    key += value;
    key += '\0';
  }
}

}  // namespace pgcutover::proxy
