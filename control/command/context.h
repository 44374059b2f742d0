// What every command gets: settings, parsed options, output mode and the two connections'
// factories. Keeps connection-error wording and JSON/human output in one place.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

#include "control/command/args.h"
#include "control/command/settings.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct CommandContext {
  ControlSettings settings;
  ParsedArgs args;
  bool json = false;
  bool tty = false;  // stdout is a terminal: progress bars redraw in place
  std::chrono::seconds connect_timeout{10};
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;

  // Connect or explain: on failure prints what went wrong and what to check, returns nullopt
  // (the caller exits kExitUsage).
  std::optional<PgConn> connect_source();
  std::optional<PgConn> connect_target();
  std::optional<PgConn> connect(const std::optional<ConnSpec>& spec, const std::string& role,
                                const std::string& origin);

  // --subscriber-url (a target role allowed to CREATE SUBSCRIPTION), else the target.
  // Prints the problem and returns nullopt when the URL does not parse.
  std::optional<ConnSpec> subscriber_spec();

  // Prints an error for a human (stderr) and, with --json, a {"ok":false,...} document.
  int fail(int exit_code, const std::string& message);
  void print_json(const boost::json::value& v);
  // Human-only line (suppressed with --json).
  void say(const std::string& line);
};

// Formatting helpers shared by the commands' human output.
std::string format_bytes(double bytes);
std::string format_seconds(double seconds);

}  // namespace pgcutover::control
