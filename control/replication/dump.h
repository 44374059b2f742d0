// The dump method: nothing replicates before the cutover; the cutover copies everything with
// parallel pg_dump -Fd -j / pg_restore -j inside the write pause. What this file offers is
// the honest window estimate:
//
//   dump_s    = database_bytes / measured_dump_rate / parallelism
//   restore_s = dump_s * restore_factor          (index and constraint rebuilds; 2.0)
//   window_s  = dump_s + restore_s
//
// measured_dump_rate = a sample table's bytes / the time pg_dump took to dump it here, so
// it includes this machine's network path to the source; parallelism = min(--jobs, tables
// big enough to matter), since one table is dumped by one worker.
#pragma once

#include <string>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct DumpEstimate {
  int64_t database_bytes = 0;
  std::string sample_table;
  int64_t sample_bytes = 0;
  double sample_seconds = 0;
  double bytes_per_second = 0;
  int parallelism = 1;
  double restore_factor = 2.0;
  double dump_seconds = 0, restore_seconds = 0, window_seconds = 0;
  std::string error;
};

DumpEstimate estimate_dump_window(PgConn& source, int jobs);

}  // namespace pgcutover::control
