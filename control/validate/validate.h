// validate: row counts and checksums compared between source and target, per table, in
// primary-key chunks on parallel connections. A chunk's digest is count(*) plus the sum of
// the first 64 bits of md5(row as text) for its rows: order-independent (no sort), portable
// across versions (md5, not hashtext), and cheap to recompute for half a chunk when
// bisecting a mismatch down to a few keys.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/command/context.h"
#include "control/db/catalog.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

// A key range of one table: lower bound inclusive, upper bound exclusive; an empty bound is
// open. Values are the key columns' text forms, cast back with the key's types.
struct KeyRange {
  std::vector<std::string> lower;
  std::vector<std::string> upper;
};

struct ChunkDigest {
  bool ok = false;
  int64_t rows = 0;
  std::string sum;  // numeric as text
  int64_t bytes = 0;
  std::string error;
  bool operator==(const ChunkDigest& o) const { return rows == o.rows && sum == o.sum; }
};

// SQL computing (count, hash sum, bytes) of `table` within `range`; parameters are the
// bounds' values in order (lower then upper). `columns` are the source's, in its order,
// so a target whose columns sit in a different physical order still compares equal.
std::string digest_sql(const TableInfo& table, const KeyRange& range);
ChunkDigest digest(PgConn& conn, const TableInfo& table, const KeyRange& range);

// "id >= 100001 and id < 150001" for humans.
std::string describe_range(const TableInfo& table, const KeyRange& range);

// `pgcutoverctl validate`.
int cmd_validate(CommandContext& ctx);

// Whether the last `validate` (recorded on the target) passed and is at most `max_age_s` old:
// "" when it is, else why not, with the fix. `age_s` is set when a validation is recorded.
std::string validation_fresh(PgConn& target, long max_age_s, std::optional<int64_t>& age_s);

// "" unless the last `validate --reverse` (recorded on the target) failed; else why a revert
// should not go ahead, with the fix.
std::string reverse_validation_failed(PgConn& target);

}  // namespace pgcutover::control
