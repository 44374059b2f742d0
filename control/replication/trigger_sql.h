// The trigger method's SQL, generated per table from its catalog description. Pure string
// building (no connection), so the generated capture functions and the apply statements are
// unit-tested for composite keys and odd identifiers (tests/unit/control_trigger_test.cpp).
//
// Why one generated function and one log table per table: measured on pgbench tpcb-like, a
// generic trigger building jsonb keys costs ~14% of tps and a statement-level trigger with
// dynamic SQL over 20%; a per-table plpgsql function whose INSERT is plain SQL is planned
// once per session. Its log row is as small as it can be: the key in its own typed columns
// (no text conversion, no array), the transaction id and the time; no index, no sequence.
// The apply's handle for an entry is its ctid: only the apply deletes entries and nothing
// ever updates them, so a ctid names the same entry from the read to the delete
// (tests/bench/bench_trigger_capture.sh measures the cost; docs/cli.md has the figures).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgcutover::control {

// Objects on the SOURCE, all in schema pgcutover (owned by the database owner).
inline constexpr const char* kTriggerTables = "pgcutover.trigger_tables";
inline constexpr const char* kTriggerName = "pgcutover_capture";
inline constexpr const char* kTriggerOldName = "pgcutover_capture_old";  // DELETE: old key
inline constexpr const char* kTriggerKeyName = "pgcutover_capture_key";  // key-changing UPDATE
inline constexpr const char* kTriggerGuardName = "pgcutover_capture_guard";
// Set to 'on' by every session that writes what the other side captured (apply, initial copy,
// the flip's final drain): the capture triggers on both sides skip those sessions' writes, so
// the way back (capture on the target, applied to the source) never echoes the way forward.
inline constexpr const char* kApplyingSetting = "pgcutover.applying";
// Session advisory lock held by whoever writes to the target from the log (apply, the
// initial copy, the flip's final drain): two appliers interleaving could write an older
// source row after a newer one and delete both log entries, losing the newer change.
inline constexpr long long kApplyLockKey = 0x706763757401LL;  // "pgcut" 01
// Transaction advisory lock taken on the DESTINATION by every apply round, from before it reads
// what the destination already holds until its commit. The session lock above lives on the
// log's side, where a fence ends the apply's session (and frees that lock) in the middle of a
// round; this one is held by the transaction that writes, so the rounds' commits are one at a
// time whatever happens to the log side (see apply_round).
inline constexpr long long kApplyCommitLockKey = 0x706763757402LL;  // "pgcut" 02

// What the generator needs to know about one captured table.
struct CapturedTable {
  int id = 0;  // pgcutover.trigger_tables.id: what the log records instead of a name
  std::string schema, name;
  std::vector<std::string> key;        // primary key columns, in key order; empty: insert-only
  std::vector<std::string> key_types;  // format_type() of each key column
  std::vector<std::string> columns;    // every non-generated column, in attnum order
  std::vector<std::string> column_types;

  bool insert_only() const { return key.empty(); }
  std::string qualified() const;          // "schema"."name"
  std::string function_name() const;      // pgcutover."capture_<id>": logs NEW
  std::string old_function_name() const;  // pgcutover."capture_old_<id>": logs OLD (keyed)
  // The table's own log: pgcutover."trigger_changes_<id>" (key columns k1..kn, at) for a
  // keyed table, pgcutover."trigger_rows_<id>" (at, r = the whole row) for an insert-only
  // one. The transaction id of an entry is its row's xmin.
  std::string log_table() const;
};

// DDL for the schema and the registry (idempotent).
std::string trigger_log_ddl();

// The table's log, CREATE FUNCTION + CREATE TRIGGER for one table (and for insert-only
// tables a statement trigger that marks the table broken if it ever sees UPDATE,
// DELETE or TRUNCATE, since those could not be carried over).
std::string capture_ddl(const CapturedTable& t);
// DROP the functions (CASCADE takes their triggers) and the log of one table, IF EXISTS
// everywhere and without naming the captured table, so it works when that table is gone.
std::string drop_capture_ddl(const CapturedTable& t);

// Schema changes while capturing (DDL is not captured): the shape of every user table (its
// columns, types, NOT NULL), recorded in pgcutover.trigger_schema when the capture is installed
// or armed, and compared on every backlog reading. record_shapes_sql() (re)records;
// changed_shapes_sql() returns one row: the shapes now that were not recorded, and the recorded
// ones that are gone, each "; "-separated or NULL.
std::string record_shapes_sql();
std::string changed_shapes_sql();

// Apply statements; parameters are one text[] per key column (or per column for the
// upsert), values in PostgreSQL's text form, cast to the column types in the SQL.
// SELECT key..., columns... of the source rows whose key is in the arrays.
std::string select_rows_sql(const CapturedTable& t);
// INSERT ... SELECT FROM unnest($1..$n) ON CONFLICT (key) DO UPDATE (or DO NOTHING when every
// column is part of the key).
std::string upsert_rows_sql(const CapturedTable& t);
// DELETE the target rows whose key is in the arrays.
std::string delete_rows_sql(const CapturedTable& t);
// INSERT the logged rows of an insert-only table: $1..$n one text[] per column.
std::string insert_rows_sql(const CapturedTable& t);
// Up to $1 entries of the table's log: ctid, xmin (the writing transaction), then the key columns
// (keyed) or every column (insert-only), all as text.
std::string select_log_sql(const CapturedTable& t);
// The ids of the tables whose log has at least one entry, in one statement.
std::string nonempty_logs_sql(const std::vector<CapturedTable>& tables);
// DELETE the entries whose ctid is in $1 (a tid[]).
std::string delete_log_sql(const CapturedTable& t);
// One statement that DELETEs the entries of several logs, the ctids of the i-th table in
// $i+1: one round trip and one commit for a whole apply round.
std::string delete_logs_sql(const std::vector<const CapturedTable*>& tables);

// A text[] literal for a parameter: {"a","b\"c",NULL}. Every element quoted, so empty
// strings, commas, braces and the word NULL survive.
std::string text_array_literal(const std::vector<std::optional<std::string>>& values);
// The inverse for the log's key column (k text[] read back in text form).
std::optional<std::vector<std::optional<std::string>>> parse_text_array(const std::string& s);

}  // namespace pgcutover::control
