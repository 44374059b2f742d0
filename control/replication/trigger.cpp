#include "control/replication/trigger.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "control/command/exit_codes.h"
#include "control/db/catalog.h"
#include "control/replication/replicate.h"
#include "control/replication/trigger_sql.h"

namespace pgcutover::control {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::vector<std::string>;

// Where the apply remembers which insert-only rows it already wrote, in the same target
// transaction as the rows: a crash between the target commit and the source-side delete
// must not insert them twice (keyed rows are idempotent by nature; these are not).
// An entry's handle there is "<table id>:<xmin>:<ctid>": a ctid alone could be reused by a
// later entry once the source-side delete committed, but not by the same transaction (only
// after 2^32 more, and a handle lives there only until the round after its own).
constexpr const char* kAppliedRowsDdl =
    "CREATE SCHEMA IF NOT EXISTS pgcutover;"
    "CREATE TABLE IF NOT EXISTS pgcutover.trigger_applied (handle text PRIMARY KEY)";

std::string array_of(const std::vector<std::string>& v) {
  std::vector<std::optional<std::string>> o(v.begin(), v.end());
  return text_array_literal(o);
}

// A session of the method: writes past a fence in its own session only (a fence is the role's
// default_transaction_read_only, and the way back applies to the fenced source), never waits
// forever on the application's locks, and marks its writes as the apply's so that the capture
// triggers on that side skip them (kApplyingSetting).
void prepare_session(PgConn& c) {
  c.exec_script(std::string("SET default_transaction_read_only = off; SET lock_timeout = '10s'; "
                            "SET ") +
                kApplyingSetting + " = on");
}

// The registry joined with the catalogs: every captured table with its columns and types.
std::optional<std::vector<CapturedTable>> load_captured(PgConn& source, std::string& error,
                                                        const std::string& side = "source") {
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

// Holds the apply lock for one scope; released by the destructor (or by the session ending
// when the process is killed, which is why it is a session lock on the source).
class ApplyLock {
 public:
  ApplyLock(PgConn& source, std::chrono::milliseconds wait) : source_(source) {
    auto ms = std::max<long long>(1, wait.count());
    source_.exec_script("SET lock_timeout = '" + std::to_string(ms) + "ms'");
    PgResult r =
        source_.exec("SELECT pg_advisory_lock($1::bigint)", {std::to_string(kApplyLockKey)});
    held_ = r.ok();
    if (!held_) error_ = r.error().message;
    source_.exec_script("SET lock_timeout = '10s'");
  }
  ~ApplyLock() {
    if (held_)
      source_.exec("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(kApplyLockKey)});
  }
  ApplyLock(const ApplyLock&) = delete;
  ApplyLock& operator=(const ApplyLock&) = delete;
  bool held() const { return held_; }
  const std::string& error() const { return error_; }

 private:
  PgConn& source_;
  bool held_ = false;
  std::string error_;
};

struct RoundResult {
  bool ok = true;
  std::string error;
  int64_t applied = 0;  // log entries consumed (keyed + insert-only)
};

// Keyed table: make the target row equal to the source's current row for each distinct
// key of `entries` (rows of select_log_sql: ctid, xmin, k1..kn). The source rows are read
// AFTER the log, so each logged change is in what we read (or something newer is).
bool apply_keyed(PgConn& source, PgConn& target, const CapturedTable& t, const PgResult& entries,
                 const SideNames& names, std::string& error) {
  std::vector<Key> keys;
  std::set<Key> seen;
  size_t nk = t.key.size();
  for (int i = 0; i < entries.rows(); ++i) {
    Key k;
    for (size_t c = 0; c < nk; ++c) k.push_back(entries.get(i, static_cast<int>(c + 2)));
    if (seen.insert(k).second) keys.push_back(std::move(k));
  }
  std::vector<Param> kp;
  for (size_t c = 0; c < nk; ++c) {
    std::vector<std::string> col;
    for (const auto& k : keys) col.push_back(k[c]);
    kp.emplace_back(array_of(col));
  }
  PgResult rows = source.exec(select_rows_sql(t), kp);
  if (!rows) {
    error = "reading " + t.qualified() + " on the " + names.from + ": " + rows.error().message;
    return false;
  }
  std::set<Key> found;
  std::vector<std::vector<std::optional<std::string>>> cols(t.columns.size());
  for (int i = 0; i < rows.rows(); ++i) {
    Key k;
    for (size_t c = 0; c < nk; ++c) k.push_back(rows.get(i, static_cast<int>(c)));
    found.insert(std::move(k));
    for (size_t c = 0; c < t.columns.size(); ++c)
      cols[c].push_back(rows.get_opt(i, static_cast<int>(nk + c)));
  }
  if (rows.rows() > 0) {
    std::vector<Param> vp;
    for (auto& col : cols) vp.emplace_back(text_array_literal(col));
    PgResult u = target.exec(upsert_rows_sql(t), vp);
    if (!u) {
      error = "writing " + t.qualified() + " on the " + names.to + ": " + u.error().message;
      return false;
    }
  }
  std::vector<Key> gone;
  for (const auto& k : keys)
    if (!found.count(k)) gone.push_back(k);
  if (gone.empty()) return true;
  std::vector<Param> dp;
  for (size_t c = 0; c < nk; ++c) {
    std::vector<std::string> col;
    for (const auto& k : gone) col.push_back(k[c]);
    dp.emplace_back(array_of(col));
  }
  PgResult d = target.exec(delete_rows_sql(t), dp);
  if (!d) {
    error = "deleting from " + t.qualified() + " on the " + names.to + ": " + d.error().message;
    return false;
  }
  return true;
}

// Insert-only table: insert the logged rows (ctid, xmin, every column) not yet recorded as
// applied, and record them, in the caller's target transaction. `handles` gets every entry's
// handle, for the clean-up after the source-side delete.
bool apply_insert_only(PgConn& target, const CapturedTable& t, const PgResult& entries,
                       std::vector<std::string>& handles, const SideNames& names,
                       std::string& error) {
  for (int i = 0; i < entries.rows(); ++i)
    handles.push_back(std::to_string(t.id) + ":" + entries.get(i, 1) + ":" + entries.get(i, 0));
  PgResult done =
      target.exec("SELECT handle FROM pgcutover.trigger_applied WHERE handle = ANY($1::text[])",
                  {array_of(handles)});
  if (!done) {
    error = "reading pgcutover.trigger_applied on the " + names.to + ": " + done.error().message;
    return false;
  }
  std::set<std::string> already;
  for (int i = 0; i < done.rows(); ++i) already.insert(done.get(i, 0));
  std::vector<std::vector<std::optional<std::string>>> cols(t.columns.size());
  std::vector<std::string> fresh;
  for (int i = 0; i < entries.rows(); ++i) {
    if (already.count(handles[i])) continue;
    fresh.push_back(handles[i]);
    for (size_t c = 0; c < t.columns.size(); ++c)
      cols[c].push_back(entries.get_opt(i, static_cast<int>(c + 2)));
  }
  if (fresh.empty()) return true;
  std::vector<Param> vp;
  for (auto& col : cols) vp.emplace_back(text_array_literal(col));
  PgResult ins = target.exec(insert_rows_sql(t), vp);
  if (!ins) {
    error = "inserting into " + t.qualified() + " on the " + names.to + ": " + ins.error().message;
    return false;
  }
  PgResult mark = target.exec("INSERT INTO pgcutover.trigger_applied SELECT unnest($1::text[])",
                              {array_of(fresh)});
  if (!mark) {
    error = "recording applied rows on the " + names.to + ": " + mark.error().message;
    return false;
  }
  return true;
}

// One batch, in the order that loses nothing: read the logs, read the source's current rows,
// write the target and commit, and only then delete the consumed entries on the source.
RoundResult apply_round(PgConn& source, PgConn& target, const std::vector<CapturedTable>& tables,
                        int batch, const SideNames& names) {
  RoundResult res;
  auto fail = [&](const std::string& error) {
    res.ok = false;
    res.error = error;
    target.exec_script("ROLLBACK");
    return res;
  };
  struct Consumed {
    const CapturedTable* table;
    std::vector<std::string> ctids, handles;
  };
  std::vector<Consumed> consumed;
  // One round trip says which logs have entries, so an idle round over hundreds of tables
  // costs one query, not one per table.
  PgResult busy = source.exec(nonempty_logs_sql(tables));
  if (!busy) {
    res.ok = false;
    res.error = "reading the change logs on the " + names.from + ": " + busy.error().message;
    return res;
  }
  std::set<int> with_entries;
  for (int i = 0; i < busy.rows(); ++i) with_entries.insert(static_cast<int>(busy.get_int(i, 0)));
  if (with_entries.empty()) return res;
  PgResult b = target.exec_script("BEGIN");
  if (!b) return fail("starting the transaction on the " + names.to + ": " + b.error().message);
  for (const auto& t : tables) {
    if (!with_entries.count(t.id)) continue;
    PgResult log = source.exec(select_log_sql(t), {std::to_string(batch)});
    if (!log)
      return fail("reading " + t.log_table() + " on the " + names.from + ": " +
                  log.error().message);
    if (log.rows() == 0) continue;
    Consumed c{&t, {}, {}};
    for (int i = 0; i < log.rows(); ++i) c.ctids.push_back(log.get(i, 0));
    std::string error;
    bool ok = t.insert_only() ? apply_insert_only(target, t, log, c.handles, names, error)
                              : apply_keyed(source, target, t, log, names, error);
    if (!ok) return fail(error);
    consumed.push_back(std::move(c));
  }
  PgResult c = target.exec_script("COMMIT");
  if (!c) return fail("committing on the " + names.to + ": " + c.error().message);

  // Only now may the entries go: exactly those read, by ctid. Entries committed after our
  // read stay for the next round.
  for (const auto& e : consumed) {
    PgResult d = source.exec(delete_log_sql(*e.table), {array_of(e.ctids)});
    if (!d) {
      res.ok = false;
      res.error = "deleting applied entries of " + e.table->log_table() + " on the " + names.from +
                  ": " + d.error().message;
      return res;
    }
    if (!e.handles.empty())
      target.exec("DELETE FROM pgcutover.trigger_applied WHERE handle = ANY($1::text[])",
                  {array_of(e.handles)});
    res.applied += static_cast<int64_t>(e.ctids.size());
  }
  return res;
}

// What the capture missed: a TRUNCATE (or UPDATE/DELETE of an insert-only table) marked by the
// guard trigger, or a schema change since the capture was installed or armed. "" when none.
std::string check_broken(PgConn& source, const std::string& side = "source") {
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

// The initial copy of one table, inside the exported snapshot: COPY out of the source
// straight into COPY in on the target, row by row, with no file in between.
bool copy_table(PgConn& src, PgConn& tgt, const CapturedTable& t, int64_t& rows, int64_t& bytes,
                std::string& error) {
  std::string cols;
  for (size_t i = 0; i < t.columns.size(); ++i) cols += (i ? ", " : "") + quote_ident(t.columns[i]);
  PgResult tr = tgt.exec_script("BEGIN; TRUNCATE " + t.qualified());
  if (!tr) {
    error = "emptying " + t.qualified() + " on the target: " + tr.error().message;
    tgt.exec_script("ROLLBACK");
    return false;
  }
  PGresult* in =
      PQexec(tgt.raw(), ("COPY " + t.qualified() + " (" + cols + ") FROM STDIN").c_str());
  bool in_ok = PQresultStatus(in) == PGRES_COPY_IN;
  PQclear(in);
  if (!in_ok) {
    error = "COPY into " + t.qualified() + " on the target: " + PQerrorMessage(tgt.raw());
    tgt.exec_script("ROLLBACK");
    return false;
  }
  PGresult* out = PQexec(
      src.raw(), ("COPY (SELECT " + cols + " FROM " + t.qualified() + ") TO STDOUT").c_str());
  bool out_ok = PQresultStatus(out) == PGRES_COPY_OUT;
  PQclear(out);
  if (!out_ok) {
    error = "COPY out of " + t.qualified() + " on the source: " + PQerrorMessage(src.raw());
    PQputCopyEnd(tgt.raw(), "source failed");
    PQclear(PQgetResult(tgt.raw()));
    tgt.exec_script("ROLLBACK");
    return false;
  }
  char* buf = nullptr;
  int n = 0;
  bool put_ok = true;
  while ((n = PQgetCopyData(src.raw(), &buf, 0)) > 0) {
    if (put_ok && PQputCopyData(tgt.raw(), buf, n) != 1) put_ok = false;
    ++rows;
    bytes += n;
    PQfreemem(buf);
  }
  bool src_ok = true;
  while (PGresult* r = PQgetResult(src.raw())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) src_ok = false;
    PQclear(r);
  }
  PQputCopyEnd(tgt.raw(), (src_ok && put_ok && n == -1) ? nullptr : "source failed");
  bool tgt_ok = true;
  std::string tgt_err;
  while (PGresult* r = PQgetResult(tgt.raw())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      tgt_ok = false;
      tgt_err = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  if (!src_ok || n != -1 || !put_ok || !tgt_ok) {
    error = "copying " + t.qualified() + ": " +
            (tgt_ok ? std::string(PQerrorMessage(src.raw())) : tgt_err);
    tgt.exec_script("ROLLBACK");
    return false;
  }
  PgResult c = tgt.exec_script("COMMIT");
  if (!c) {
    error = "committing " + t.qualified() + " on the target: " + c.error().message;
    return false;
  }
  return true;
}

// Tables that cannot converge by key: no primary key, and UPDATE or DELETE seen. "" when none.
std::string keyless_changing(const std::vector<TableInfo>& all) {
  std::string list;
  for (const auto& t : all)
    if (!t.has_primary_key && t.updates_and_deletes != 0)
      list += (list.empty() ? "" : ", ") + t.display();
  return list;
}

struct CaptureInstall {
  bool ok = false;
  std::string error;
  int64_t keyed = 0, insert_only = 0;
};

// The registry, and for each table its log, functions and triggers, in one transaction on
// `side`. Idempotent: a table already registered keeps its id, its triggers are re-created
// and its broken mark cleared.
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

}  // namespace

TriggerBacklog trigger_backlog(PgConn& source, const std::string& side) {
  TriggerBacklog b;
  std::string e;
  auto tables = load_captured(source, e, side);
  if (!tables) {
    b.error = e;
    return b;
  }
  // count(*) and min(at) of logs that the apply keeps short are cheap.
  std::string sql =
      "SELECT coalesce(sum(n), 0)::bigint, coalesce(extract(epoch FROM now() - min(oldest)), "
      "0)::float8 FROM (SELECT 0::bigint n, NULL::timestamptz oldest";
  for (const auto& t : *tables) sql += " UNION ALL SELECT count(*), min(at) FROM " + t.log_table();
  sql += ") s";
  PgResult r = source.exec(sql);
  if (!r) {
    b.error = "reading the change log on the " + side + ": " + r.error().message;
    return b;
  }
  b.pending = r.get_int(0, 0);
  b.oldest_seconds = std::max(0.0, r.get_double(0, 1));
  b.broken = check_broken(source, side);
  b.ok = true;
  return b;
}

bool trigger_drain(PgConn& source, PgConn& target, std::chrono::milliseconds timeout,
                   int64_t& applied, std::string& error, const SideNames& names) {
  auto deadline = Clock::now() + timeout;
  std::string e;
  auto tables = load_captured(source, e, names.from);
  if (!tables) {
    error = e;
    return false;
  }
  // The destination of a revert is still fenced in this session (a role setting is read at
  // login), and what the drain writes there must not be captured to travel back.
  prepare_session(source);
  prepare_session(target);
  target.exec_script(kAppliedRowsDdl);
  ApplyLock lock(source, timeout);
  if (!lock.held()) {
    error = "another apply holds the lock past the bound: " + lock.error();
    return false;
  }
  applied = 0;
  while (Clock::now() < deadline) {
    RoundResult r = apply_round(source, target, *tables, 5000, names);
    if (!r.ok) {
      error = r.error;
      return false;
    }
    applied += r.applied;
    if (r.applied == 0) {
      if (std::string br = check_broken(source, names.from); !br.empty()) {
        error = br;
        return false;
      }
      return true;
    }
  }
  error = "the change log did not drain within " + std::to_string(timeout.count()) + " ms";
  return false;
}

bool has_trigger_capture(PgConn& side) {
  auto v = side.value("SELECT to_regclass('pgcutover.trigger_tables') IS NOT NULL");
  return v && *v == "t";
}

bool install_way_back_capture(PgConn& destination, const std::string& name, std::string& error,
                              std::string& summary) {
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
  summary = "capture on " + std::to_string(inst.keyed + inst.insert_only) + " table(s) of the " +
            name + ", dormant until the flip";
  return true;
}

bool arm_trigger_capture(PgConn& side, PgConn& other, std::chrono::milliseconds wait,
                         const SideNames& names, std::string& error) {
  auto tables = load_captured(side, error, names.from);
  if (!tables) return false;
  prepare_session(side);
  ApplyLock lock(side, wait);
  if (!lock.held()) {
    error = "an apply on the " + names.from + " holds its lock past the bound: " + lock.error();
    return false;
  }
  // DELETE, not TRUNCATE: the logs are near empty (nothing but a write that bypassed the
  // method lands there), and DELETE takes no lock that would queue behind a reader.
  std::string sql = "BEGIN;";
  for (const auto& t : *tables) sql += "DELETE FROM " + t.log_table() + ";";
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

int trigger_start(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  prepare_session(*source);
  PgError pe;
  auto all = list_user_tables(*source, true, pe);
  if (!all) return ctx.fail(kExitCheckFailed, "reading the source catalog: " + pe.message);

  // Which tables can be captured: a primary key, or no UPDATE/DELETE ever (insert-only, the
  // whole row is logged). The rest cannot converge by key: refuse with the fix.
  if (std::string list = keyless_changing(*all); !list.empty())
    return ctx.fail(kExitCheckFailed,
                    "the trigger method needs a primary key on every table that sees UPDATE or "
                    "DELETE; these have none: " +
                        list +
                        ". Fix: ALTER TABLE ... ADD PRIMARY KEY (...), or promote a unique index "
                        "on NOT NULL columns with ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY "
                        "USING INDEX <index>, then run replicate start again");

  // 1. The log and the triggers, in one transaction, BEFORE the snapshot: every change not
  //    in the snapshot is then in the log.
  CaptureInstall inst = install_capture(*source, *all, "source");
  if (!inst.ok) return ctx.fail(kExitCheckFailed, inst.error);
  ctx.say("capture installed on " + std::to_string(inst.keyed) + " table(s) by key and " +
          std::to_string(inst.insert_only) + " insert-only table(s) by row");

  std::string e;
  auto tables = load_captured(*source, e);
  if (!tables) return ctx.fail(kExitCheckFailed, e);
  PgResult ad = target->exec_script(kAppliedRowsDdl);
  if (!ad) return ctx.fail(kExitCheckFailed, "on the target: " + ad.error().message);

  // 2. No apply may write the target while the copy replaces its tables.
  auto lock_conn = connect_like(*source, "source", e);
  if (!lock_conn) return ctx.fail(kExitUsage, e);
  ApplyLock lock(*lock_conn, std::chrono::seconds(60));
  if (!lock.held())
    return ctx.fail(kExitCheckFailed, "waiting for a running apply to pause: " + lock.error());

  // 3. One snapshot for every table, exported so parallel workers all see the same instant.
  auto snap_conn = connect_like(*source, "source", e);
  if (!snap_conn) return ctx.fail(kExitUsage, e);
  PgResult sb = snap_conn->exec_script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  auto snapshot = snap_conn->value("SELECT pg_export_snapshot()");
  if (!sb || !snapshot) return ctx.fail(kExitCheckFailed, "exporting a snapshot on the source");
  // Insert-only rows that the snapshot already contains were also logged (their trigger ran
  // before the snapshot): remember exactly which, to drop them from the shadow log after
  // the copy. The same visibility rule decides both, so nothing is doubled or missed.
  std::map<int, std::vector<std::string>> in_snapshot;  // table id -> ctids
  for (const auto& t : *tables) {
    if (!t.insert_only()) continue;
    PgResult r = snap_conn->exec("SELECT ctid::text FROM " + t.log_table());
    if (!r)
      return ctx.fail(kExitCheckFailed, "reading " + t.log_table() + ": " + r.error().message);
    for (int i = 0; i < r.rows(); ++i) in_snapshot[t.id].push_back(r.get(i, 0));
  }

  int jobs = std::max(1, std::atoi(ctx.args.get("jobs", "4").c_str()));
  std::vector<size_t> order(tables->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::atomic<size_t> next{0};
  std::atomic<int64_t> total_rows{0}, total_bytes{0};
  std::atomic<int> done_tables{0};
  std::mutex mu;
  std::string first_error;
  auto t0 = Clock::now();
  auto worker = [&]() {
    std::string err;
    auto s = connect_like(*source, "source", err);
    auto d = s ? connect_like(*target, "target", err) : std::nullopt;
    if (d) {
      PgResult b = s->exec_script(
          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
          "SET TRANSACTION SNAPSHOT " +
          s->quote_literal(*snapshot));
      if (!b) err = "joining the snapshot: " + b.error().message;
      prepare_session(*d);
    }
    while (err.empty()) {
      size_t i = next++;
      if (i >= order.size()) break;
      const CapturedTable& t = (*tables)[order[i]];
      int64_t rows = 0, bytes = 0;
      auto ts = Clock::now();
      if (!copy_table(*s, *d, t, rows, bytes, err)) break;
      total_rows += rows;
      total_bytes += bytes;
      int k = ++done_tables;
      std::lock_guard<std::mutex> g(mu);
      ctx.say("  copied " + t.schema + "." + t.name + ": " + std::to_string(rows) + " rows, " +
              format_bytes(static_cast<double>(bytes)) + " in " +
              format_seconds(std::chrono::duration<double>(Clock::now() - ts).count()) + " (" +
              std::to_string(k) + "/" + std::to_string(order.size()) + " tables)");
    }
    if (!err.empty()) {
      std::lock_guard<std::mutex> g(mu);
      if (first_error.empty()) first_error = err;
      next = order.size();  // stop the others at their next table
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min<int>(jobs, static_cast<int>(order.size())); ++i)
    threads.emplace_back(worker);
  for (auto& th : threads) th.join();
  snap_conn->exec_script("COMMIT");
  if (!first_error.empty()) return ctx.fail(kExitCheckFailed, "initial copy: " + first_error);

  for (const auto& [id, ctids] : in_snapshot) {
    auto it = std::find_if(tables->begin(), tables->end(),
                           [&](const CapturedTable& t) { return t.id == id; });
    PgResult d = source->exec(delete_log_sql(*it), {array_of(ctids)});
    if (!d)
      return ctx.fail(kExitCheckFailed, "trimming " + it->log_table() + ": " + d.error().message);
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  PgError re;
  if (!record_method(*target, "trigger",
                     boost::json::object{{"tables", static_cast<int64_t>(tables->size())},
                                         {"copied_rows", total_rows.load()},
                                         {"copy_seconds", secs}},
                     re))
    return ctx.fail(kExitCheckFailed, "recording the method on the target: " + re.message);
  if (ctx.json) {
    ctx.print_json(boost::json::object{{"ok", true},
                                       {"method", "trigger"},
                                       {"tables", static_cast<int64_t>(tables->size())},
                                       {"copied_rows", total_rows.load()},
                                       {"copied_bytes", total_bytes.load()},
                                       {"copy_seconds", secs}});
  } else {
    ctx.say("initial copy done: " + std::to_string(total_rows.load()) + " rows, " +
            format_bytes(static_cast<double>(total_bytes.load())) + " in " + format_seconds(secs) +
            " from one snapshot (" + std::to_string(threads.size()) + " workers)");
    ctx.say(
        "changes made meanwhile are in the log: run `pgcutoverctl replicate apply` to "
        "apply them and keep the target in sync");
  }
  return kExitOk;
}

int cmd_replicate_apply(CommandContext& ctx) {
  auto source_conn = ctx.connect_source();
  if (!source_conn) return kExitUsage;
  auto target_conn = ctx.connect_target();
  if (!target_conn) return kExitUsage;
  // --reverse: the way back after a flip, captured on the target and applied to the fenced
  // source. `source` and `target` below are the direction's ends.
  bool reverse = ctx.args.has("reverse");
  SideNames names = reverse ? SideNames{"target", "source"} : SideNames{};
  auto& source = reverse ? target_conn : source_conn;
  auto& target = reverse ? source_conn : target_conn;
  prepare_session(*source);
  prepare_session(*target);
  std::string e;
  auto tables = load_captured(*source, e, names.from);
  if (!tables) return ctx.fail(kExitCheckFailed, e);
  target->exec_script(kAppliedRowsDdl);
  bool once = ctx.args.has("once"), until_empty = ctx.args.has("until-empty");
  int batch = std::max(1, std::atoi(ctx.args.get("batch", "2000").c_str()));
  double limit = ctx.args.has("timeout") ? std::stod(ctx.args.get("timeout")) : 0;
  auto t0 = Clock::now(), last_report = t0;
  int64_t total = 0, since_report = 0;
  Clock::time_point failing_since{};
  for (;;) {
    if (limit > 0 && std::chrono::duration<double>(Clock::now() - t0).count() > limit)
      return ctx.fail(kExitCheckFailed, "--timeout passed with entries still pending (applied " +
                                            std::to_string(total) + ")");
    RoundResult r;
    {
      ApplyLock lock(*source, std::chrono::seconds(30));
      if (!lock.held()) {
        r.ok = false;
        r.error = "taking the apply lock: " + lock.error();
      } else {
        r = apply_round(*source, *target, *tables, batch, names);
      }
    }
    if (!r.ok) {
      // A fence ends our sessions, a network blip drops one: reconnect for a bounded 60 s
      // before giving up, since nothing is lost by retrying (entries stay until applied).
      if (failing_since == Clock::time_point{}) failing_since = Clock::now();
      if (Clock::now() - failing_since > std::chrono::seconds(60) || once)
        return ctx.fail(kExitCheckFailed, "apply: " + r.error);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (PQstatus(source->raw()) != CONNECTION_OK) {
        if (auto s = connect_like(*source, names.from.c_str(), e)) *source = std::move(*s);
        prepare_session(*source);
      }
      if (PQstatus(target->raw()) != CONNECTION_OK) {
        if (auto t = connect_like(*target, names.to.c_str(), e)) *target = std::move(*t);
        prepare_session(*target);
      }
      continue;
    }
    failing_since = {};
    total += r.applied;
    since_report += r.applied;
    if (once || (until_empty && r.applied == 0)) break;
    if (Clock::now() - last_report > std::chrono::seconds(5)) {
      TriggerBacklog b = trigger_backlog(*source, names.from);
      if (!b.broken.empty()) return ctx.fail(kExitCheckFailed, b.broken);
      if (!ctx.json)
        *ctx.out << "applied " << since_report << " change(s); pending " << b.pending << ", oldest "
                 << format_seconds(b.oldest_seconds) << "\n"
                 << std::flush;
      since_report = 0;
      last_report = Clock::now();
    }
    // Idle: poll. A full batch goes round again at once.
    if (r.applied < batch) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  TriggerBacklog b = trigger_backlog(*source, names.from);
  if (!b.broken.empty()) return ctx.fail(kExitCheckFailed, b.broken);
  if (ctx.json)
    ctx.print_json(boost::json::object{{"ok", true},
                                       {"direction", reverse ? "reverse" : "forward"},
                                       {"applied", total},
                                       {"pending", b.pending},
                                       {"oldest_seconds", b.oldest_seconds}});
  else
    ctx.say("applied " + std::to_string(total) + " change(s); pending " +
            std::to_string(b.pending));
  return kExitOk;
}

int trigger_status(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  TriggerBacklog b = trigger_backlog(*source);
  if (!b.ok) return ctx.fail(kExitCheckFailed, b.error);
  bool healthy = b.broken.empty();
  if (ctx.json) {
    boost::json::object o{{"ok", healthy},
                          {"method", "trigger"},
                          {"pending", b.pending},
                          {"oldest_seconds", b.oldest_seconds}};
    if (!healthy) o["error"] = b.broken;
    ctx.print_json(o);
  } else {
    *ctx.out << "trigger: " << b.pending << " change(s) pending, oldest "
             << format_seconds(b.oldest_seconds) << "\n";
    if (!healthy) *ctx.out << "BROKEN: " << b.broken << "\n";
  }
  return healthy ? kExitOk : kExitCheckFailed;
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

int trigger_stop(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  std::vector<std::string> problems;
  remove_trigger_capture(*source, &*target, problems);
  PgError e;
  record_method(*target, "", {}, e);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    return ctx.fail(kExitCheckFailed, "could not remove everything: " + all);
  }
  if (ctx.json)
    ctx.print_json(boost::json::object{{"ok", true}, {"method", "trigger"}, {"stopped", true}});
  else
    ctx.say("trigger capture removed from the source (triggers, functions, change log)");
  return kExitOk;
}

}  // namespace pgcutover::control
