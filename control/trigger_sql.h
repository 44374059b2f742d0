// The trigger method's SQL, generated per table from its catalog description. Pure string
// building (no connection), so the generated capture functions and the apply statements are
// unit-tested for composite keys and odd identifiers (tests/unit/control_trigger_test.cpp).
//
// Why one generated function per table with static SQL: measured on pgbench tpcb-like, a
// generic trigger building jsonb keys costs ~14% of tps and a statement-level trigger with
// dynamic SQL over 20%; a per-table plpgsql function whose INSERT is plain SQL is planned
// once per session and costs a few percent (docs/cli.md, "replicate --method trigger").
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgcutover::control {

// Objects on the SOURCE, all in schema pgcutover (owned by the database owner).
inline constexpr const char* kTriggerChanges = "pgcutover.trigger_changes";
inline constexpr const char* kTriggerTables = "pgcutover.trigger_tables";
inline constexpr const char* kTriggerName = "pgcutover_capture";
inline constexpr const char* kTriggerGuardName = "pgcutover_capture_guard";
// Session advisory lock held by whoever writes to the target from the log (apply, the
// initial copy, the flip's final drain): two appliers interleaving could write an older
// source row after a newer one and delete both log entries, losing the newer change.
inline constexpr long long kApplyLockKey = 0x706763757401LL;  // "pgcut" 01

// What the generator needs to know about one captured table.
struct CapturedTable {
  int id = 0;  // pgcutover.trigger_tables.id: what the log records instead of a name
  std::string schema, name;
  std::vector<std::string> key;        // primary key columns, in key order; empty: insert-only
  std::vector<std::string> key_types;  // format_type() of each key column
  std::vector<std::string> columns;    // every non-generated column, in attnum order
  std::vector<std::string> column_types;

  bool insert_only() const { return key.empty(); }
  std::string qualified() const;      // "schema"."name"
  std::string function_name() const;  // pgcutover."capture_<id>"
  std::string shadow_table() const;   // pgcutover."trigger_rows_<id>" (insert-only tables)
};

// DDL for the log and the registry (idempotent).
std::string trigger_log_ddl();

// CREATE FUNCTION + CREATE TRIGGER for one table (and for insert-only tables the shadow
// table, plus a statement trigger that marks the table broken if it ever sees UPDATE,
// DELETE or TRUNCATE, since those could not be carried over).
std::string capture_ddl(const CapturedTable& t);
// DROP TRIGGER/FUNCTION/shadow table for one table (IF EXISTS everywhere).
std::string drop_capture_ddl(const CapturedTable& t);

// Apply statements; parameters are one text[] per key column (or per column for the
// upsert), values in PostgreSQL's text form, cast to the column types in the SQL.
// SELECT key..., columns... of the source rows whose key is in the arrays.
std::string select_rows_sql(const CapturedTable& t);
// INSERT ... SELECT FROM unnest($1..$n) ON CONFLICT (key) DO UPDATE (or DO NOTHING when every
// column is part of the key).
std::string upsert_rows_sql(const CapturedTable& t);
// DELETE the target rows whose key is in the arrays.
std::string delete_rows_sql(const CapturedTable& t);
// INSERT the shadow rows of an insert-only table: $1..$n one text[] per column.
std::string insert_rows_sql(const CapturedTable& t);
// change_id, then every column as text, of the oldest $1 shadow rows of an insert-only table.
std::string select_shadow_sql(const CapturedTable& t);

// A text[] literal for a parameter: {"a","b\"c",NULL}. Every element quoted, so empty
// strings, commas, braces and the word NULL survive.
std::string text_array_literal(const std::vector<std::optional<std::string>>& values);
// The inverse for the log's key column (k text[] read back in text form).
std::optional<std::vector<std::optional<std::string>>> parse_text_array(const std::string& s);

}  // namespace pgcutover::control
