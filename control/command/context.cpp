#include "control/command/context.h"

#include <cmath>
#include <cstdio>
#include <iostream>

#include "control/command/exit_codes.h"

namespace pgcutover::control {

std::optional<PgConn> CommandContext::connect_source() {
  return connect(settings.source, "source", settings.source_origin);
}

std::optional<PgConn> CommandContext::connect_target() {
  return connect(settings.target, "target", settings.target_origin);
}

std::optional<PgConn> CommandContext::connect(const std::optional<ConnSpec>& spec,
                                              const std::string& role, const std::string& origin) {
  if (!spec) {
    fail(kExitUsage, "no " + role + " database configured: pass --" + role +
                         "-url URL, or -c FILE with [backends." + role + "]");
    return std::nullopt;
  }
  PgError e;
  auto c = PgConn::connect(*spec, connect_timeout, role, e);
  if (!c) {
    fail(kExitUsage, e.message + "\n  check " + origin +
                         ": host and port reachable from here, credentials, sslmode/sslrootcert, "
                         "and that the server is running (timeout " +
                         std::to_string(connect_timeout.count()) + "s, --connect-timeout)");
    return std::nullopt;
  }
  // Same text rendering on both sides, so row hashes and reports compare like for like.
  c->exec_script(
      "SET extra_float_digits = 3; SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; "
      "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET lock_timeout = '10s'");
  return c;
}

std::optional<ConnSpec> CommandContext::subscriber_spec() {
  if (!args.has("subscriber-url")) return settings.target;
  std::string e;
  auto spec = ConnSpec::parse(args.get("subscriber-url"), e);
  if (!spec) fail(kExitUsage, "--subscriber-url: " + e);
  return spec;
}

int CommandContext::fail(int exit_code, const std::string& message) {
  *err << "pgcutoverctl: " << message << "\n";
  if (json) {
    boost::json::object o;
    o["ok"] = false;
    o["exit_code"] = exit_code;
    o["error"] = message;
    print_json(o);
  }
  return exit_code;
}

void CommandContext::print_json(const boost::json::value& v) {
  *out << boost::json::serialize(v) << "\n";
  out->flush();
}

void CommandContext::say(const std::string& line) {
  if (json) return;
  *out << line << "\n";
  out->flush();
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string format_seconds(double s) {
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.2fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

}  // namespace pgcutover::control
