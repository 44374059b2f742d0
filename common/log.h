// Structured logging: one event per line, `ts=... level=... event=... key=value ...`.
// Values are quoted when they contain spaces or quotes. Never pass a password, a SCRAM
// verifier or a DSN with its password: use redact_url() (common/redact.h) for URLs.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pgcutover::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string>;

void set_level(Level level);
Level level();
// Parses debug|info|warn|error; false when unknown.
bool parse_level(std::string_view text, Level& out);
// Send lines to a file descriptor other than stderr (tests capture it).
void set_fd(int fd);

void write(Level level, std::string_view event, std::initializer_list<Field> fields);

inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (level() <= Level::kDebug) write(Level::kDebug, event, fields);
}
inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kError, event, fields);
}

}  // namespace pgcutover::log
