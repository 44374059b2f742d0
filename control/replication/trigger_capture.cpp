#include "control/replication/trigger_capture.h"

#include <algorithm>

#include "control/replication/trigger.h"

namespace pgcutover::control {

const char* const kAppliedRowsDdl =
    "CREATE SCHEMA IF NOT EXISTS pgcutover;"
    "CREATE TABLE IF NOT EXISTS pgcutover.trigger_applied (handle text PRIMARY KEY)";

std::string array_of(const std::vector<std::string>& v) {
  std::vector<std::optional<std::string>> o(v.begin(), v.end());
  return text_array_literal(o);
}

void prepare_session(PgConn& c) {
  c.exec_script(std::string("SET default_transaction_read_only = off; SET lock_timeout = '10s'; "
                            "SET ") +
                kApplyingSetting + " = on");
}

std::optional<std::vector<CapturedTable>> load_captured(PgConn& source, std::string& error,
                                                        const std::string& side) {
  PgResult r =
      source.exec("SELECT id, schema_name, table_name FROM pgcutover.trigger_tables ORDER BY id");
  if (!r) {
    error = r.error().sqlstate != "42P01"
                ? "reading pgcutover.trigger_tables on the " + side + ": " + r.error().message
            : side == "source"
                ? "no trigger capture on the source (run `replicate start --method trigger`)"
                : "no trigger capture on the " + side +
                      " (a flip with the trigger method installs it there for the way back)";
    return std::nullopt;
  }
  PgError pe;
  auto tables = list_user_tables(source, true, pe);
  if (!tables) {
    error = "reading the " + side + " catalog: " + pe.message;
    return std::nullopt;
  }
  std::vector<CapturedTable> out;
  for (int i = 0; i < r.rows(); ++i) {
    CapturedTable c;
    c.id = static_cast<int>(r.get_int(i, 0));
    c.schema = r.get(i, 1);
    c.name = r.get(i, 2);
    auto it = std::find_if(tables->begin(), tables->end(), [&](const TableInfo& t) {
      return t.schema == c.schema && t.name == c.name;
    });
    if (it == tables->end()) {
      error = "captured table " + c.schema + "." + c.name + " no longer exists on the " + side;
      return std::nullopt;
    }
    c.key = it->primary_key;
    c.key_types = it->primary_key_types;
    for (const auto& col : it->columns) {
      if (col.generated) continue;  // the target computes its own
      c.columns.push_back(col.name);
      c.column_types.push_back(col.type);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<PgConn> connect_like(const PgConn& c, const char* role, std::string& error) {
  PgError e;
  auto conn = PgConn::connect(c.spec(), std::chrono::seconds(10), role, e);
  if (!conn) error = e.message;
  return conn;
}

ApplyLock::ApplyLock(PgConn& source, std::chrono::milliseconds wait) : source_(source) {
  auto ms = std::max<long long>(1, wait.count());
  source_.exec_script("SET lock_timeout = '" + std::to_string(ms) + "ms'");
  PgResult r = source_.exec("SELECT pg_advisory_lock($1::bigint)", {std::to_string(kApplyLockKey)});
  held_ = r.ok();
  if (!held_) error_ = r.error().message;
  source_.exec_script("SET lock_timeout = '10s'");
}

ApplyLock::~ApplyLock() {
  if (held_) source_.exec("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(kApplyLockKey)});
}

std::string check_broken(PgConn& source, const std::string& side) {
  std::string what;
  PgResult r = source.exec(
      "SELECT schema_name || '.' || table_name || ' saw ' || broken FROM "
      "pgcutover.trigger_tables WHERE broken IS NOT NULL ORDER BY id LIMIT 1");
  if (r && r.rows() > 0) what = r.get(0, 0);
  auto recorded = source.value("SELECT to_regclass('pgcutover.trigger_schema') IS NOT NULL");
  if (what.empty() && recorded && *recorded == "t") {
    PgResult c = source.exec(changed_shapes_sql());
    if (c && c.rows() > 0 && (!c.is_null(0, 0) || !c.is_null(0, 1))) {
      auto cut = [](std::string v) { return v.size() > 300 ? v.substr(0, 300) + "..." : v; };
      what = "a schema change (DDL), which is not captured: now " +
             (c.is_null(0, 0) ? std::string("-") : cut(c.get(0, 0))) + "; was " +
             (c.is_null(0, 1) ? std::string("-") : cut(c.get(0, 1)));
    }
  }
  if (what.empty()) return {};
  if (side != "source")
    return what + " on the " + side +
           " since the flip, which the way back cannot carry over: a revert would lose it; "
           "validate --reverse shows the difference";
  return what +
         ", which the trigger method cannot carry over: run `replicate start --method trigger` "
         "again to re-copy";
}

std::string keyless_changing(const std::vector<TableInfo>& all) {
  std::string list;
  for (const auto& t : all)
    if (!t.has_primary_key && t.updates_and_deletes != 0)
      list += (list.empty() ? "" : ", ") + t.display();
  return list;
}

CaptureInstall install_capture(PgConn& side, const std::vector<TableInfo>& all,
                               const std::string& side_name) {
  CaptureInstall out;
  auto fail = [&](const std::string& e) {
    side.exec_script("ROLLBACK");
    out.error = e;
    return out;
  };
  PgResult ok = side.exec_script("BEGIN;" + trigger_log_ddl());
  if (!ok)
    return fail("creating the change log on the " + side_name + ": " + ok.error().message +
                " (the role must own the database or have CREATE on it)");
  for (const auto& t : all) {
    PgResult id = side.exec(
        "INSERT INTO pgcutover.trigger_tables (id, schema_name, table_name, key_columns, broken) "
        "VALUES ((SELECT coalesce(max(id), 0) + 1 FROM pgcutover.trigger_tables), $1, $2, $3, "
        "NULL) ON CONFLICT (schema_name, table_name) DO UPDATE SET key_columns = "
        "EXCLUDED.key_columns, broken = NULL RETURNING id",
        {t.schema, t.name, array_of(t.primary_key)});
    if (!id) return fail("registering " + t.display() + ": " + id.error().message);
    CapturedTable c;
    c.id = static_cast<int>(id.get_int(0, 0));
    c.schema = t.schema;
    c.name = t.name;
    c.key = t.primary_key;
    c.key_types = t.primary_key_types;
    PgResult cr = side.exec_script(capture_ddl(c));
    if (!cr)
      return fail("installing the trigger on " + t.display() + " on the " + side_name + ": " +
                  cr.error().message + " (the role must own the table)");
    (c.insert_only() ? out.insert_only : out.keyed)++;
  }
  PgResult rs = side.exec_script(record_shapes_sql());
  if (!rs)
    return fail("recording the table shapes on the " + side_name + ": " + rs.error().message);
  PgResult cm = side.exec_script("COMMIT");
  if (!cm) return fail("committing the triggers on the " + side_name + ": " + cm.error().message);
  out.ok = true;
  return out;
}

bool has_trigger_capture(PgConn& side) {
  auto v = side.value("SELECT to_regclass('pgcutover.trigger_tables') IS NOT NULL");
  return v && *v == "t";
}

bool install_way_back_capture(PgConn& destination, const std::string& name, std::string& error) {
  prepare_session(destination);
  PgError pe;
  auto all = list_user_tables(destination, true, pe);
  if (!all) {
    error = "reading the " + name + " catalog: " + pe.message;
    return false;
  }
  if (std::string list = keyless_changing(*all); !list.empty()) {
    error = "tables without a primary key that see UPDATE or DELETE on the " + name + ": " + list;
    return false;
  }
  CaptureInstall inst = install_capture(destination, *all, name);
  if (!inst.ok) {
    error = inst.error;
    return false;
  }
  PgResult ad = destination.exec_script(kAppliedRowsDdl);
  if (!ad) {
    error = "on the " + name + ": " + ad.error().message;
    return false;
  }
  return true;
}

const std::vector<CapturedTable>* captured_tables(PgConn& side, const std::string& side_name,
                                                  const DrainStart& start,
                                                  std::optional<std::vector<CapturedTable>>& loaded,
                                                  std::string& error) {
  if (start.tables != nullptr) return start.tables;
  loaded = load_captured(side, error, side_name);
  return loaded ? &*loaded : nullptr;
}

bool arm_trigger_capture(PgConn& side, PgConn& other, std::chrono::milliseconds wait,
                         const SideNames& names, std::string& error, DrainStart start) {
  std::optional<std::vector<CapturedTable>> loaded;
  const auto* captured = captured_tables(side, names.from, start, loaded, error);
  if (captured == nullptr) return false;
  const std::vector<CapturedTable>& tables = *captured;
  if (!start.sessions_prepared) prepare_session(side);
  ApplyLock lock(side, wait);
  if (!lock.held()) {
    error = "an apply on the " + names.from + " holds its lock past the bound: " + lock.error();
    return false;
  }
  // DELETE, not TRUNCATE: the logs are near empty (nothing but a write that bypassed the
  // method lands there), and DELETE takes no lock that would queue behind a reader.
  std::string sql = "BEGIN;";
  for (const auto& t : tables) sql += "DELETE FROM " + t.log_table() + ";";
  sql += "UPDATE pgcutover.trigger_tables SET broken = NULL WHERE broken IS NOT NULL;" +
         record_shapes_sql() + "COMMIT";
  PgResult r = side.exec_script(sql);
  if (!r) {
    side.exec_script("ROLLBACK");
    error = "arming the capture on the " + names.from + ": " + r.error().message;
    return false;
  }
  // Rows the other side recorded as applied belong to entries just emptied.
  other.exec_script(
      "DO $$BEGIN IF to_regclass('pgcutover.trigger_applied') IS NOT NULL THEN DELETE FROM "
      "pgcutover.trigger_applied; END IF; END$$");
  return true;
}

bool remove_trigger_capture(PgConn& source, PgConn* target, std::vector<std::string>& problems) {
  prepare_session(source);
  size_t before = problems.size();
  PgResult r = source.exec("SELECT id FROM pgcutover.trigger_tables");
  if (!r && r.error().sqlstate != "42P01") {
    problems.push_back("reading pgcutover.trigger_tables: " + r.error().message);
    return false;
  }
  for (int i = 0; r && i < r.rows(); ++i) {
    CapturedTable t;
    t.id = static_cast<int>(r.get_int(i, 0));
    PgResult d = source.exec_script(drop_capture_ddl(t));
    if (!d) problems.push_back("capture " + std::to_string(t.id) + ": " + d.error().message);
  }
  // Triggers whose registry row is gone (an interrupted start): find them by name.
  PgResult orphans = source.exec(
      "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = "
      "p.pronamespace WHERE n.nspname = 'pgcutover' AND (p.proname LIKE 'capture\\_%' OR "
      "p.proname LIKE 'guard\\_%')");
  for (int i = 0; orphans && i < orphans.rows(); ++i) {
    PgResult d = source.exec_script("DROP FUNCTION IF EXISTS " + orphans.get(i, 0) + " CASCADE");
    if (!d) problems.push_back(orphans.get(i, 0) + ": " + d.error().message);
  }
  PgResult logs = source.exec(
      "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON "
      "n.oid = c.relnamespace WHERE n.nspname = 'pgcutover' AND c.relkind = 'r' AND (c.relname "
      "LIKE 'trigger\\_changes\\_%' OR c.relname LIKE 'trigger\\_rows\\_%')");
  for (int i = 0; logs && i < logs.rows(); ++i) {
    PgResult d = source.exec_script("DROP TABLE IF EXISTS " + logs.get(i, 0));
    if (!d) problems.push_back(logs.get(i, 0) + ": " + d.error().message);
  }
  source.exec_script("DROP TABLE IF EXISTS pgcutover.trigger_schema");
  PgResult d = source.exec_script("DROP TABLE IF EXISTS pgcutover.trigger_tables");
  if (!d) problems.push_back("dropping the registry: " + d.error().message);
  // Other methods keep their own objects in this schema: drop it only when it is empty.
  source.exec_script("DROP SCHEMA IF EXISTS pgcutover");
  if (target) target->exec_script("DROP TABLE IF EXISTS pgcutover.trigger_applied");
  return problems.size() == before;
}

}  // namespace pgcutover::control
