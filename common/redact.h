// Secrets never reach a log line, an error message or a metric: anything that may hold a URL or
// a conninfo string (libpq and server messages can echo a connection string back) goes through
// one of these before it is shown.
#pragma once

#include <string>
#include <string_view>

namespace pgcutover {

// postgres://user:secret@host/db -> postgres://user:***@host/db (also password=... in
// key/value conninfo strings). Hand-written: it runs on error paths of the data plane.
std::string redact_url(std::string_view url);

// redact_url() and, for conninfo fragments it may not cover (quoted values with escapes), a
// regular expression: for the control plane's error paths, where speed does not matter.
std::string redact(std::string_view text);

}  // namespace pgcutover
