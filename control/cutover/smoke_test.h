// The flip's smoke test (step 7): through one proxy, a read that proves the destination answers
// and a write in a transaction that is rolled back.
#pragma once

#include <string>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

// Connects to `proxy_url` (a client URL of one proxy) and checks that the server answering is
// `destination` (same pg_postmaster_start_time) and that its sessions may write (CREATE TABLE
// and INSERT rolled back; without CREATE privilege, transaction_read_only must be off).
// "" when it passed, else why not.
std::string smoke_test(const std::string& proxy_url, PgConn& destination,
                       const std::string& destination_name);

}  // namespace pgcutover::control
