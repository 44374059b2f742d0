#include "control/replication/trigger_sql.h"

#include "control/db/catalog.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {
namespace {

std::string key_row(const CapturedTable& t, const char* row) {
  std::string s = "(";
  for (size_t i = 0; i < t.key.size(); ++i) {
    if (i) s += ", ";
    s += std::string(row) + "." + quote_ident(t.key[i]);
  }
  return s + ")";
}

// k1, ..., kn: the log's key columns, named by position so no column name is spliced in.
std::string key_columns(const CapturedTable& t) {
  std::string s;
  for (size_t i = 0; i < t.key.size(); ++i) s += (i ? ", k" : "k") + std::to_string(i + 1);
  return s;
}

// A dollar-quote tag absent from the body: a quoted column named `$pgcutover$` must not end
// the function body early.
std::string dollar_tag(const std::string& body) {
  std::string tag = "$pgcutover$";
  for (int n = 1; body.find(tag) != std::string::npos; ++n)
    tag = "$pgcutover" + std::to_string(n) + "$";
  return tag;
}

std::string log_insert(const CapturedTable& t, const char* row) {
  std::string values = key_row(t, row);
  return "INSERT INTO " + t.log_table() + " (" + key_columns(t) + ") VALUES " + values + ";";
}

// Every capture trigger's WHEN clause: a session of pgcutover's own apply (either direction, and
// the initial copy) sets the setting, so what one side applies is never captured to be sent
// back. Evaluated by the executor before plpgsql is called; an unknown custom setting with
// missing_ok reads as NULL, so the application's sessions need nothing.
std::string not_applying() {
  return std::string("current_setting('") + kApplyingSetting + "', true) IS DISTINCT FROM 'on'";
}

std::string list(const std::vector<std::string>& names, const std::string& prefix = "") {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += prefix + quote_ident(names[i]);
  }
  return s;
}

// unnest($1::text[], ..., $n::text[]) AS u(v1, ..., vn): positional aliases, so no column
// name is ever spliced in twice.
std::string unnest_params(size_t n, size_t first_param = 1) {
  std::string s = "unnest(";
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += "$" + std::to_string(first_param + i) + "::text[]";
  }
  s += ") AS u(";
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += "v" + std::to_string(i + 1);
  }
  return s + ")";
}

std::string key_match(const CapturedTable& t) {
  std::string s;
  for (size_t i = 0; i < t.key.size(); ++i) {
    if (i) s += " AND ";
    s += "t." + quote_ident(t.key[i]) + " = u.v" + std::to_string(i + 1) + "::" + t.key_types[i];
  }
  return s;
}

}  // namespace

std::string CapturedTable::qualified() const {
  return qualified_name(schema, name);
}
std::string CapturedTable::function_name() const {
  return "pgcutover." + quote_ident("capture_" + std::to_string(id));
}
std::string CapturedTable::old_function_name() const {
  return "pgcutover." + quote_ident("capture_old_" + std::to_string(id));
}
std::string CapturedTable::log_table() const {
  return "pgcutover." +
         quote_ident((insert_only() ? "trigger_rows_" : "trigger_changes_") + std::to_string(id));
}

std::string trigger_log_ddl() {
  return "CREATE SCHEMA IF NOT EXISTS pgcutover;"
         "CREATE TABLE IF NOT EXISTS pgcutover.trigger_tables ("
         " id int PRIMARY KEY, schema_name text NOT NULL, table_name text NOT NULL,"
         " key_columns text[] NOT NULL, broken text, UNIQUE (schema_name, table_name));";
}

std::string capture_ddl(const CapturedTable& t) {
  std::string fn = t.function_name(), tbl = t.qualified();
  std::string guard_fn = "pgcutover." + quote_ident("guard_" + std::to_string(t.id));
  // What the row trigger cannot carry marks the table broken (the apply then refuses to go
  // on) instead of failing the application's statement: TRUNCATE always, and UPDATE/DELETE
  // on an insert-only table.
  std::string guard = "BEGIN UPDATE " + std::string(kTriggerTables) +
                      " SET broken = TG_OP WHERE id = " + std::to_string(t.id) +
                      "; RETURN NULL; END";
  std::string gtag = dollar_tag(guard);
  std::string ddl =
      "CREATE OR REPLACE FUNCTION " + guard_fn + "() RETURNS trigger LANGUAGE plpgsql AS " + gtag +
      guard + gtag + ";" + "DROP TRIGGER IF EXISTS " + kTriggerGuardName + " ON " + tbl + ";" +
      "CREATE TRIGGER " + kTriggerGuardName + " AFTER " +
      (t.insert_only() ? "UPDATE OR DELETE OR TRUNCATE" : "TRUNCATE") + " ON " + tbl +
      " FOR EACH STATEMENT WHEN (" + not_applying() + ") EXECUTE FUNCTION " + guard_fn + "();";
  std::string body, events;
  // No index, no sequence, no foreign key on a log: each would cost the application's
  // write path, and the apply needs none of them (it reads whole logs, deletes by ctid).
  // No transaction id column either: every row carries its own, xmin.
  const char* stamp = "at timestamptz NOT NULL DEFAULT now()";
  if (t.insert_only()) {
    // The whole row, as the table's own composite type: no column list to keep in sync, and
    // one INSERT.
    ddl +=
        "CREATE TABLE IF NOT EXISTS " + t.log_table() + " (" + stamp + ", r " + tbl + " NOT NULL);";
    body = "BEGIN INSERT INTO " + t.log_table() + " (r) VALUES (NEW); RETURN NULL; END";
    events = "INSERT";
  } else {
    std::string cols;
    for (size_t i = 0; i < t.key.size(); ++i)
      cols += "k" + std::to_string(i + 1) + " " + t.key_types[i] + ", ";
    ddl += "CREATE TABLE IF NOT EXISTS " + t.log_table() + " (" + cols + stamp + ");";
    // Three triggers, two one-statement functions, no IF in plpgsql: the common UPDATE that
    // keeps the key runs one function call and one INSERT. An UPDATE that changes the key
    // also logs the old key (so the apply deletes that row on the target); that test is the
    // trigger's WHEN clause, evaluated without calling plpgsql.
    std::string old_fn = t.old_function_name();
    std::string old_body = "BEGIN " + log_insert(t, "OLD") + " RETURN NULL; END";
    std::string otag = dollar_tag(old_body);
    ddl += "CREATE OR REPLACE FUNCTION " + old_fn + "() RETURNS trigger LANGUAGE plpgsql AS " +
           otag + old_body + otag + ";";
    for (const char* name : {kTriggerOldName, kTriggerKeyName})
      ddl += "DROP TRIGGER IF EXISTS " + std::string(name) + " ON " + tbl + ";";
    ddl += "CREATE TRIGGER " + std::string(kTriggerOldName) + " AFTER DELETE ON " + tbl +
           " FOR EACH ROW WHEN (" + not_applying() + ") EXECUTE FUNCTION " + old_fn + "();";
    ddl += "CREATE TRIGGER " + std::string(kTriggerKeyName) + " AFTER UPDATE ON " + tbl +
           " FOR EACH ROW WHEN (" + key_row(t, "OLD") + " IS DISTINCT FROM " + key_row(t, "NEW") +
           " AND " + not_applying() + ") EXECUTE FUNCTION " + old_fn + "();";
    body = "BEGIN " + log_insert(t, "NEW") + " RETURN NULL; END";
    events = "INSERT OR UPDATE";
  }
  std::string tag = dollar_tag(body);
  return ddl + "CREATE OR REPLACE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS " +
         tag + body + tag + ";" + "DROP TRIGGER IF EXISTS " + kTriggerName + " ON " + tbl + ";" +
         "CREATE TRIGGER " + kTriggerName + " AFTER " + events + " ON " + tbl +
         " FOR EACH ROW WHEN (" + not_applying() + ") EXECUTE FUNCTION " + fn + "();";
}

std::string drop_capture_ddl(const CapturedTable& t) {
  // CASCADE reaches exactly the triggers that call these functions; both possible log names
  // go, since the registry no longer says whether the table had a key.
  std::string id = std::to_string(t.id);
  return "DROP FUNCTION IF EXISTS " + t.function_name() + "() CASCADE;" +
         "DROP FUNCTION IF EXISTS " + t.old_function_name() + "() CASCADE;" +
         "DROP FUNCTION IF EXISTS pgcutover." + quote_ident("guard_" + id) + "() CASCADE;" +
         "DROP TABLE IF EXISTS pgcutover." + quote_ident("trigger_changes_" + id) + ";" +
         "DROP TABLE IF EXISTS pgcutover." + quote_ident("trigger_rows_" + id) + ";";
}

std::string table_shapes_sql() {
  return std::string(
             "SELECT format('%I.%I(%s)', n.nspname, c.relname, (SELECT string_agg(format('%I "
             "%s%s', a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull "
             "THEN ' not null' ELSE '' END), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE "
             "a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)) AS d FROM pg_class c "
             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND "
             "NOT c.relispartition AND ") +
         kUserSchemaFilter;
}

std::string record_shapes_sql() {
  return "CREATE TABLE IF NOT EXISTS pgcutover.trigger_schema (one bool PRIMARY KEY DEFAULT "
         "true CHECK (one), tables text[] NOT NULL, at timestamptz NOT NULL DEFAULT now());"
         "INSERT INTO pgcutover.trigger_schema (tables) SELECT coalesce(array_agg(d ORDER BY d), "
         "'{}') FROM (" +
         table_shapes_sql() +
         ") s ON CONFLICT (one) DO UPDATE SET tables = EXCLUDED.tables, at = now();";
}

std::string changed_shapes_sql() {
  return "WITH now AS (" + table_shapes_sql() +
         "), was AS (SELECT unnest(tables) AS d FROM pgcutover.trigger_schema) SELECT (SELECT "
         "string_agg(d, '; ' ORDER BY d) FROM (SELECT d FROM now EXCEPT SELECT d FROM was) x), "
         "(SELECT string_agg(d, '; ' ORDER BY d) FROM (SELECT d FROM was EXCEPT SELECT d FROM "
         "now) y)";
}

std::string select_rows_sql(const CapturedTable& t) {
  std::string s = "SELECT ";
  for (size_t i = 0; i < t.key.size(); ++i) s += "t." + quote_ident(t.key[i]) + "::text, ";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i) s += ", ";
    s += "t." + quote_ident(t.columns[i]) + "::text";
  }
  return s + " FROM " + unnest_params(t.key.size()) + " JOIN " + t.qualified() + " t ON " +
         key_match(t);
}

std::string insert_rows_sql(const CapturedTable& t) {
  std::string s = "INSERT INTO " + t.qualified() + " (" + list(t.columns) + ") SELECT ";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i) s += ", ";
    s += "u.v" + std::to_string(i + 1) + "::" + t.column_types[i];
  }
  return s + " FROM " + unnest_params(t.columns.size());
}

std::string upsert_rows_sql(const CapturedTable& t) {
  std::string s = insert_rows_sql(t) + " ON CONFLICT (" + list(t.key) + ") DO ";
  std::string set;
  for (const auto& c : t.columns) {
    bool in_key = false;
    for (const auto& k : t.key) in_key = in_key || k == c;
    if (in_key) continue;
    if (!set.empty()) set += ", ";
    set += quote_ident(c) + " = EXCLUDED." + quote_ident(c);
  }
  return s + (set.empty() ? "NOTHING" : "UPDATE SET " + set);
}

std::string delete_rows_sql(const CapturedTable& t) {
  return "DELETE FROM " + t.qualified() + " t USING " + unnest_params(t.key.size()) + " WHERE " +
         key_match(t);
}

std::string select_log_sql(const CapturedTable& t) {
  // No ORDER BY: the apply converges by key whatever the order, and a log that the apply
  // keeps short is read whole each round (the final drain reads it to empty).
  std::string s = "SELECT ctid::text, xmin::text";
  if (t.insert_only())
    for (const auto& c : t.columns) s += ", (r)." + quote_ident(c) + "::text";
  else
    for (size_t i = 0; i < t.key.size(); ++i) s += ", k" + std::to_string(i + 1) + "::text";
  return s + " FROM " + t.log_table() + " LIMIT $1::int";
}

std::string nonempty_logs_sql(const std::vector<CapturedTable>& tables) {
  std::string s = "SELECT 0 WHERE false";
  for (const auto& t : tables)
    s += " UNION ALL SELECT " + std::to_string(t.id) + " WHERE EXISTS (SELECT FROM " +
         t.log_table() + ")";
  return s;
}

std::string delete_log_sql(const CapturedTable& t) {
  return "DELETE FROM " + t.log_table() + " WHERE ctid = ANY($1::tid[])";
}

std::string delete_logs_sql(const std::vector<const CapturedTable*>& tables) {
  std::string s;
  for (size_t i = 0; i < tables.size(); ++i) {
    std::string n = std::to_string(i + 1);
    s += (i ? ", d" : "WITH d") + n + " AS (DELETE FROM " + tables[i]->log_table() +
         " WHERE ctid = ANY($" + n + "::tid[]))";
  }
  return s + " SELECT " + std::to_string(tables.size());
}

std::string text_array_literal(const std::vector<std::optional<std::string>>& values) {
  std::string s = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ',';
    if (!values[i]) {
      s += "NULL";
      continue;
    }
    s += '"';
    for (char c : *values[i]) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

std::optional<std::vector<std::optional<std::string>>> parse_text_array(const std::string& s) {
  // One-dimensional arrays as array_out writes them: elements quoted when they need it,
  // backslash escapes inside quotes, unquoted NULL for null.
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return std::nullopt;
  std::vector<std::optional<std::string>> out;
  size_t i = 1, end = s.size() - 1;
  if (i == end) return out;
  while (i <= end) {
    std::string v;
    bool quoted = false;
    if (s[i] == '"') {
      quoted = true;
      ++i;
      while (i < end && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < end) ++i;
        v += s[i++];
      }
      if (i >= end) return std::nullopt;
      ++i;  // closing quote
    } else {
      while (i < end && s[i] != ',') v += s[i++];
    }
    if (!quoted && v == "NULL")
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(std::move(v));
    if (i == end) break;
    if (s[i] != ',') return std::nullopt;
    ++i;
  }
  return out;
}

}  // namespace pgcutover::control
