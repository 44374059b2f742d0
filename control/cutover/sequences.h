// Sequences after the catch-up: logical replication copies no sequence positions, so every
// sequence on the destination is set to at least the side being left's last_value plus a
// margin (in increments), and never moved backwards (a destination sequence already ahead,
// say after a revert and a second flip, stays where it is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct SequenceValue {
  std::string schema, name;
  std::optional<int64_t> last_value;  // NULL: never used (or no privilege to read it)
  int64_t increment = 1;
};

struct SequenceUpdate {
  std::string schema, name;
  int64_t from_value = 0;                 // the side being left
  std::optional<int64_t> current_target;  // the destination before
  int64_t new_value = 0;
};

// Pure: which setval() calls to make. A sequence missing on the destination is reported in
// `missing`. Overflow saturates at the int64 bounds (setval then fails loudly on max_value).
std::vector<SequenceUpdate> plan_sequence_updates(const std::vector<SequenceValue>& from,
                                                  const std::vector<SequenceValue>& to,
                                                  int64_t margin,
                                                  std::vector<std::string>* missing = nullptr);
// "SELECT setval('\"s\".\"n\"', 1234, true)"
std::string setval_sql(const SequenceUpdate& u);

// Reads every sequence in user schemas (not pgcutover).
std::optional<std::vector<SequenceValue>> read_sequences(PgConn& conn, PgError& error);

struct SequenceSync {
  bool ok = false;
  std::vector<SequenceUpdate> updates;
  std::vector<std::string> missing;
  std::string error;
};
// Reads both sides and applies the plan on `to` in one transaction.
SequenceSync sync_sequences(PgConn& from, PgConn& to, int64_t margin, bool dry_run);

}  // namespace pgcutover::control
