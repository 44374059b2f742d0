// Running the PostgreSQL client tools (pg_dump, pg_restore, psql) as children: argv without
// a shell (no quoting bugs), credentials through the environment (argv is world-readable in
// /proc), stdout to a file or captured, stderr captured for the error message.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct ProcessResult {
  int exit_code = -1;  // -1 when it could not start or was killed by a signal
  std::string output;  // stdout, when not redirected to a file
  std::string errors;  // stderr (redacted)
  double seconds = 0;  // wall time
};

// Runs `argv` with the libpq environment of `conn` (PGHOST, PGPASSWORD, ...; other PG*
// variables of ours are removed so nothing leaks in from the caller's shell).
// `stdout_path` empty: stdout is captured into output; "/dev/null" discards it.
ProcessResult run_client_tool(const std::vector<std::string>& argv, const ConnSpec& conn,
                              const std::string& stdout_path = {});

}  // namespace pgcutover::control
