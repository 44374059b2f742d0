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
#include "control/replication/trigger_capture.h"
#include "control/replication/trigger_sql.h"

namespace pgcutover::control {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::vector<std::string>;

struct RoundResult {
  bool ok = true;
  std::string error;
  int64_t applied = 0;  // log entries consumed (keyed + insert-only)
};

// Test hook: a command run (once per process) right after a round has read entries from a
// log, so a test can end this apply's log-side session there and let another apply run.
void test_hook_after_log_read() {
  static bool fired = false;
  const char* h = std::getenv("PGCUTOVER_TEST_HOOK_AFTER_LOG_READ");
  if (h == nullptr || fired) return;
  fired = true;
  int rc = std::system(h);
  (void)rc;
}

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
//
// And in the order that applies nothing twice when two applies overlap. The session lock
// (ApplyLock) lives on the log's side, and a fence that ends this apply's session there frees it
// for the flip's drain while this round may still be writing the destination (seen: one
// pgbench_history row twice on the source after a revert, about 1 run in 35). So the
// destination transaction takes kApplyCommitLockKey before this round reads any log: another
// round cannot commit until this one has committed or failed, and then finds this one's
// trigger_applied records and skips those rows. And no other round can have committed entries
// this one is about to read: that round would have held the log lock, so this round's log-side
// session (the one that held it) was gone before, and this round's reads on it fail.
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
  PgResult b = target.exec_script("BEGIN; SELECT pg_advisory_xact_lock(" +
                                  std::to_string(kApplyCommitLockKey) + ")");
  if (!b) return fail("starting the transaction on the " + names.to + ": " + b.error().message);
  for (const auto& t : tables) {
    if (!with_entries.count(t.id)) continue;
    PgResult log = source.exec(select_log_sql(t), {std::to_string(batch)});
    if (!log)
      return fail("reading " + t.log_table() + " on the " + names.from + ": " +
                  log.error().message);
    if (log.rows() == 0) continue;
    test_hook_after_log_read();
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

  // Only now may the entries go: exactly those read, by ctid, all logs in one statement (one
  // round trip and one commit on the source). Entries committed after our read stay for the
  // next round.
  if (consumed.empty()) return res;
  std::vector<const CapturedTable*> logs;
  std::vector<Param> ctids;
  std::vector<std::string> handles;
  for (const auto& e : consumed) {
    logs.push_back(e.table);
    ctids.emplace_back(array_of(e.ctids));
    handles.insert(handles.end(), e.handles.begin(), e.handles.end());
    res.applied += static_cast<int64_t>(e.ctids.size());
  }
  PgResult d = source.exec(delete_logs_sql(logs), ctids);
  if (!d) {
    res.ok = false;
    res.applied = 0;
    res.error = "deleting applied entries on the " + names.from + ": " + d.error().message;
    return res;
  }
  // The records of insert-only rows: their entries are gone, so they can go too (a leftover
  // only costs a row; the next round never sees that handle again).
  if (!handles.empty())
    target.exec("DELETE FROM pgcutover.trigger_applied WHERE handle = ANY($1::text[])",
                {array_of(handles)});
  return res;
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
                   int64_t& applied, std::string& error, const SideNames& names, DrainStart start,
                   DrainTimes* times) {
  DrainTimes unused;
  DrainTimes& t = times != nullptr ? *times : unused;
  auto since = [](Clock::time_point from) {
    return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
  };
  auto t0 = Clock::now();
  auto deadline = t0 + timeout;
  std::optional<std::vector<CapturedTable>> loaded;
  const auto* captured = captured_tables(source, names.from, start, loaded, error);
  if (captured == nullptr) return false;
  const std::vector<CapturedTable>& tables = *captured;
  if (!start.sessions_prepared) {
    // The destination of a revert is still fenced in this session (a role setting is read at
    // login), and what the drain writes there must not be captured to travel back.
    prepare_session(source);
    prepare_session(target);
    target.exec_script(kAppliedRowsDdl);
  }
  t.prepare_ms = since(t0);
  auto t1 = Clock::now();
  ApplyLock lock(source, timeout);
  t.lock_ms = since(t1);
  if (!lock.held()) {
    error = "another apply holds the lock past the bound: " + lock.error();
    return false;
  }
  applied = 0;
  auto t2 = Clock::now();
  while (Clock::now() < deadline) {
    RoundResult r = apply_round(source, target, tables, 5000, names);
    ++t.rounds;
    if (!r.ok) {
      error = r.error;
      return false;
    }
    applied += r.applied;
    if (r.applied == 0) {
      t.rounds_ms = since(t2);
      auto t3 = Clock::now();
      std::string br = check_broken(source, names.from);
      t.check_ms = since(t3);
      if (!br.empty()) {
        error = br;
        return false;
      }
      return true;
    }
  }
  error = "the change log did not drain within " + std::to_string(timeout.count()) + " ms";
  return false;
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
