// The logical method: a publication on the source, a subscription on the target with
// copy_data, per-table progress of the initial copy, then streaming.
#include <map>
#include <set>
#include <thread>

#include "control/command/exit_codes.h"
#include "control/command/progress.h"
#include "control/db/capabilities.h"
#include "control/db/catalog.h"
#include "control/db/control_state.h"
#include "control/replication/lag.h"
#include "control/replication/link.h"
#include "control/replication/replicate.h"
#include "control/schema/schema_diff.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// pg_subscription_rel.srsubstate, in words.
std::string state_name(char s) {
  switch (s) {
    case 'i':
      return "waiting";
    case 'd':
      return "copying";
    case 'f':
      return "copied";
    case 's':
      return "syncing";
    case 'r':
      return "streaming";
    default:
      return "unknown";
  }
}

struct TableProgress {
  std::string name;  // schema.table
  char state = 'i';
  int64_t rows_copied = 0;  // pg_stat_progress_copy while copying
  int64_t rows_total = 0;   // source estimate
  int64_t bytes_total = 0;  // source pg_table_size
  int64_t bytes_target = 0;
};

struct SubscriptionProgress {
  bool exists = false;
  bool enabled = false;
  bool worker_running = false;
  std::vector<TableProgress> tables;
  int streaming = 0;
  double fraction = 0;  // by bytes
  std::string error;
};

std::string subscription_exists_sql() {
  return "SELECT s.oid, s.subenabled FROM pg_subscription s WHERE s.subname = $1 AND "
         "s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())";
}

SubscriptionProgress read_progress(PgConn& subscriber,
                                   const std::map<std::string, std::pair<int64_t, int64_t>>& sizes,
                                   const std::string& subscription = kSubscription) {
  SubscriptionProgress p;
  PgResult s = subscriber.exec(subscription_exists_sql(), {subscription});
  if (!s) {
    p.error = s.error().message;
    return p;
  }
  if (s.rows() == 0) return p;
  p.exists = true;
  p.enabled = s.get_bool(0, 1);
  auto w = subscriber.value(
      "SELECT count(*) FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL AND "
      "relid IS NULL",
      {subscription});
  p.worker_running = w && *w != "0";
  PgResult r = subscriber.exec(
      "SELECT n.nspname || '.' || c.relname, sr.srsubstate, pg_table_size(c.oid), "
      "(SELECT pc.tuples_processed FROM pg_stat_progress_copy pc WHERE pc.relid = c.oid LIMIT 1) "
      "FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid "
      "JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = "
      "current_database()) ORDER BY 1",
      {subscription});
  if (!r) {
    p.error = r.error().message;
    return p;
  }
  double done = 0, total = 0;
  for (int i = 0; i < r.rows(); ++i) {
    TableProgress t;
    t.name = r.get(i, 0);
    t.state = r.get(i, 1)[0];
    t.bytes_target = r.get_int(i, 2);
    t.rows_copied = r.get_int(i, 3);
    if (auto it = sizes.find(t.name); it != sizes.end()) {
      t.rows_total = it->second.first;
      t.bytes_total = it->second.second;
    }
    double weight = static_cast<double>(std::max<int64_t>(t.bytes_total, 8192));
    total += weight;
    if (t.state == 'r' || t.state == 's' || t.state == 'f') {
      done += weight;
      if (t.rows_copied == 0) t.rows_copied = t.rows_total;
    } else if (t.state == 'd' && t.rows_total > 0) {
      done += weight * std::min(1.0, static_cast<double>(t.rows_copied) / t.rows_total);
    }
    p.streaming += t.state == 'r';
    p.tables.push_back(t);
  }
  p.fraction = total > 0 ? done / total : 0;
  return p;
}

json::object progress_json(const SubscriptionProgress& p) {
  json::array tables;
  for (const auto& t : p.tables)
    tables.push_back(json::object{{"table", t.name},
                                  {"state", state_name(t.state)},
                                  {"srsubstate", std::string(1, t.state)},
                                  {"rows_copied", t.rows_copied},
                                  {"rows_estimated", t.rows_total},
                                  {"source_bytes", t.bytes_total},
                                  {"target_bytes", t.bytes_target}});
  return json::object{{"subscription_exists", p.exists},
                      {"enabled", p.enabled},
                      {"apply_worker_running", p.worker_running},
                      {"tables_streaming", p.streaming},
                      {"tables", tables},
                      {"fraction_copied", p.fraction}};
}

std::string progress_text(const SubscriptionProgress& p) {
  int64_t rows = 0, total = 0;
  std::string copying;
  for (const auto& t : p.tables) {
    rows += t.rows_copied;
    total += t.rows_total;
    if (t.state == 'd') copying += (copying.empty() ? "" : ", ") + t.name;
  }
  std::string s = std::to_string(p.streaming) + "/" + std::to_string(p.tables.size()) +
                  " tables streaming, " + std::to_string(rows) + "/" + std::to_string(total) +
                  " rows";
  if (!copying.empty()) s += ", copying " + copying;
  return s;
}

// Source sizes for the progress figures: estimated rows and table bytes.
std::map<std::string, std::pair<int64_t, int64_t>> source_sizes(PgConn& source) {
  std::map<std::string, std::pair<int64_t, int64_t>> m;
  PgError e;
  auto tables = list_user_tables(source, false, e);
  if (!tables) return m;
  for (const auto& t : *tables) {
    auto v = source.value("SELECT pg_table_size($1::regclass)", {t.qualified()});
    m[t.display()] = {t.estimated_rows, v ? std::stoll(*v) : t.total_bytes};
  }
  return m;
}

// Waits until every table streams; draws progress. Returns the last reading.
SubscriptionProgress wait_streaming(CommandContext& ctx, PgConn& source, PgConn& subscriber,
                                    std::chrono::seconds timeout, bool& timed_out) {
  auto sizes = source_sizes(source);
  ProgressBar bar(*ctx.out, ctx.tty);
  auto deadline = Clock::now() + timeout;
  auto last_sizes = Clock::now();
  timed_out = false;
  SubscriptionProgress p;
  std::map<std::string, char> seen;
  while (true) {
    p = read_progress(subscriber, sizes);
    if (!p.error.empty() || !p.exists) return p;
    bool all = !p.tables.empty() && p.streaming == static_cast<int>(p.tables.size());
    if (!ctx.json) {
      if (!ctx.tty) {
        for (const auto& t : p.tables)
          if (seen[t.name] != t.state) {
            seen[t.name] = t.state;
            *ctx.out << "  " << t.name << ": " << state_name(t.state) << "\n";
          }
      }
      if (!all) bar.update(p.fraction, progress_text(p));
    }
    if (all) {
      if (!ctx.json) bar.finish("all " + std::to_string(p.tables.size()) + " tables streaming");
      return p;
    }
    if (Clock::now() >= deadline) {
      timed_out = true;
      if (!ctx.json) bar.finish("still copying: " + progress_text(p));
      return p;
    }
    // reltuples is refreshed by ANALYZE on the source; re-read sizes now and then.
    if (Clock::now() - last_sizes > std::chrono::seconds(30)) {
      sizes = source_sizes(source);
      last_sizes = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::optional<PgConn> connect_subscriber(CommandContext& ctx, std::optional<PgConn>& target) {
  if (!ctx.args.has("subscriber-url")) return std::move(target);
  auto spec = ctx.subscriber_spec();
  if (!spec) return std::nullopt;
  return ctx.connect(spec, "subscriber", "--subscriber-url");
}

}  // namespace

int logical_start(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  auto target_spec = target->spec();
  PgError e;
  // The target's own role records the method; the subscriber may be another role.
  auto state_conn = ctx.connect(target_spec, "target", ctx.settings.target_origin);
  if (!state_conn) return kExitUsage;
  auto subscriber = connect_subscriber(ctx, target);
  if (!subscriber) return kExitUsage;

  PgResult existing = subscriber->exec(subscription_exists_sql(), {std::string(kSubscription)});
  if (!existing)
    return ctx.fail(kExitUsage, "reading pg_subscription: " + existing.error().message);
  bool already = existing.rows() > 0;
  json::object report{{"method", "logical"}};

  if (!already) {
    SourceCapabilities caps;
    if (!read_source_capabilities(*source, caps, e))
      return ctx.fail(kExitUsage, "reading the source's capabilities: " + e.message);
    if (!caps.logical_possible())
      return ctx.fail(kExitCheckFailed,
                      "native logical replication is not possible on this source: " +
                          caps.logical_blockers(source->spec().get("user")) +
                          "\n  fix: use --method trigger or --method dump (see `pgcutoverctl "
                          "preflight`)");
    if (!target_can_subscribe(*subscriber))
      return ctx.fail(kExitCheckFailed,
                      "role " + subscriber->spec().get("user") +
                          " cannot CREATE SUBSCRIPTION on the target\n  fix: pass "
                          "--subscriber-url with a superuser / rds_superuser role");
    // The subscription applies into existing tables: the schema must be there and match.
    auto source_schema = read_schema(*source, e);
    auto target_schema = source_schema ? read_schema(*state_conn, e) : std::nullopt;
    if (!source_schema || !target_schema)
      return ctx.fail(kExitUsage, "reading catalogs: " + e.message);
    if (target_schema->relations == 0)
      return ctx.fail(kExitCheckFailed,
                      "the target has no tables yet\n  fix: run `pgcutoverctl schema copy` first");
    std::vector<SchemaDifference> blocking;
    for (const auto& d : diff_schemas(*source_schema, *target_schema))
      if (d.object.rfind("table ", 0) == 0 || d.object.rfind("column ", 0) == 0)
        blocking.push_back(d);
    if (!blocking.empty()) {
      *ctx.err << "pgcutoverctl: tables or columns differ between source and target:\n";
      print_differences(*ctx.err, blocking, 20);
      return ctx.fail(kExitCheckFailed,
                      "fix the differences (`pgcutoverctl schema diff`) before replicating");
    }

    auto tables = list_user_tables(*source, false, e);
    if (!tables) return ctx.fail(kExitUsage, "listing source tables: " + e.message);
    std::vector<std::string> keyed, keyless, skipped;
    for (const auto& t : *tables) {
      if (t.unlogged) {
        skipped.push_back(t.display());
      } else {
        (t.has_replica_identity() ? keyed : keyless).push_back(t.qualified());
      }
    }
    for (const auto& name : skipped)
      *ctx.err << "pgcutoverctl: warning: unlogged table " << name
               << " cannot be published; its rows are not replicated\n";
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    // Tables without a key are published for INSERT only: publishing their UPDATE/DELETE
    // would make those statements fail on the source (no replica identity).
    struct Pub {
      const char* name;
      std::vector<std::string>* tables;
      const char* with;
    };
    std::vector<std::string> pubs;
    for (const Pub& p : {Pub{kPublication, &keyed, ""},
                         Pub{kInsertOnlyPublication, &keyless, " WITH (publish = 'insert')"}}) {
      auto exists =
          source->value("SELECT count(*) FROM pg_publication WHERE pubname = $1", {p.name});
      std::string sql;
      if (p.tables->empty()) {
        if (exists && *exists != "0")
          source->exec_script("DROP PUBLICATION " + quote_ident(p.name));
        continue;
      }
      if (exists && *exists != "0") {
        sql = "ALTER PUBLICATION " + quote_ident(p.name) + " SET TABLE " + join(*p.tables);
      } else {
        sql =
            "CREATE PUBLICATION " + quote_ident(p.name) + " FOR TABLE " + join(*p.tables) + p.with;
      }
      PgResult r = source->exec_script(sql);
      if (!r)
        return ctx.fail(kExitCheckFailed, std::string("creating publication ") + p.name +
                                              " on the source: " + r.error().message);
      pubs.push_back(p.name);
    }
    if (!keyless.empty())
      ctx.say("tables without a key, replicated as insert-only: " + join(keyless));

    // The slot, created here with a bound: it waits for transactions running on the source.
    if (!slot_exists(*source, kSlot)) {
      std::string timeout = ctx.args.get("slot-timeout", "60");
      source->exec("SELECT set_config('statement_timeout', $1, false)", {timeout + "s"});
      auto t0 = Clock::now();
      PgResult r = source->exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                                {std::string(kSlot)});
      source->exec("SET statement_timeout = 0");
      if (!r) {
        std::string why = r.error().sqlstate == "57014"
                              ? "creating the slot waited " + timeout +
                                    "s for transactions running on the source; retry when they "
                                    "end (or raise --slot-timeout)"
                              : "creating replication slot: " + r.error().message;
        return ctx.fail(kExitCheckFailed, why);
      }
      report["slot_seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
    }

    std::string publisher = source->spec().conninfo();
    if (ctx.args.has("publisher-url")) {
      std::string pe;
      auto spec = ConnSpec::parse(ctx.args.get("publisher-url"), pe);
      if (!spec) return ctx.fail(kExitUsage, "--publisher-url: " + pe);
      publisher = spec->conninfo();
    }
    std::string pub_list;
    for (const auto& p : pubs) pub_list += (pub_list.empty() ? "" : ", ") + quote_ident(p);
    // The connection string (with its password) is stored in pg_subscription, readable only
    // by superusers; it is never printed. synchronous_commit = on: the apply worker reports a
    // commit as flushed right away, so the flip's catch-up barrier (confirmed_flush_lsn >= L)
    // is met per commit instead of once per wal_writer_delay (measured here: 380 ms of a 500 ms
    // write pause without it, under 40 ms with it).
    PgResult r = subscriber->exec_script(
        "CREATE SUBSCRIPTION " + quote_ident(kSubscription) + " CONNECTION " +
        subscriber->quote_literal(publisher) + " PUBLICATION " + pub_list +
        " WITH (create_slot = false, slot_name = " + subscriber->quote_literal(kSlot) +
        ", copy_data = true, synchronous_commit = 'on')");
    if (!r)
      return ctx.fail(kExitCheckFailed,
                      "creating the subscription on the target: " + r.error().message +
                          (r.error().hint.empty() ? "" : " (" + r.error().hint + ")") +
                          "\n  the publication and slot stay on the source; "
                          "`replicate stop --method logical` removes them");
    json::array published;
    for (const auto& x : keyed) published.emplace_back(x);
    for (const auto& x : keyless) published.emplace_back(x);
    if (!record_method(*state_conn, "logical",
                       json::object{{"publications", json::array(pubs.begin(), pubs.end())},
                                    {"tables", published}},
                       e))
      *ctx.err << "pgcutoverctl: warning: could not record the method on the target: " << e.message
               << "\n";
    ctx.say("subscription " + std::string(kSubscription) +
            " created on the target; initial copy of " +
            std::to_string(keyed.size() + keyless.size()) + " tables started");
  } else {
    ctx.say("subscription " + std::string(kSubscription) +
            " already exists on the target: showing its progress");
    PgError ignore;
    if (recorded_method(*state_conn).empty()) record_method(*state_conn, "logical", {}, ignore);
  }

  if (ctx.args.has("no-wait")) {
    if (ctx.json) {
      report["ok"] = true;
      report["waited"] = false;
      ctx.print_json(report);
    }
    return kExitOk;
  }
  auto t0 = Clock::now();
  bool timed_out = false;
  auto timeout = std::chrono::seconds(std::stol(ctx.args.get("wait-timeout", "3600")));
  SubscriptionProgress p = wait_streaming(ctx, *source, *subscriber, timeout, timed_out);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!p.error.empty()) return ctx.fail(kExitUsage, "reading progress: " + p.error);
  ReplicationLag lag = measure_lag(*source, *subscriber, "logical");
  report["ok"] = !timed_out;
  report["copy_seconds"] = secs;
  report["progress"] = progress_json(p);
  report["lag"] = to_json(lag);
  if (ctx.json) {
    ctx.print_json(report);
  } else if (timed_out) {
    *ctx.out << "initial copy not finished after " << format_seconds(secs)
             << "; it continues in the background (`pgcutoverctl replicate status`)\n";
  } else {
    *ctx.out << "streaming after " << format_seconds(secs) << "; lag " << describe(lag) << "\n";
  }
  return timed_out ? kExitCheckFailed : kExitOk;
}

namespace {

// After a flip the forward subscription is gone and, where the source could subscribe, the
// reverse one (target -> source) carries every write back: that is the replication to watch
// until finalize, and the one `revert` needs.
int reverse_status(CommandContext& ctx, PgConn& source, PgConn& target,
                   const SubscriptionProgress& p) {
  ReplicationLag lag = measure_lag(source, target, "logical");
  bool healthy = p.enabled && p.worker_running && lag.ok;
  std::string sub = reverse_link().subscription;
  if (ctx.json) {
    auto o = progress_json(p);
    o["ok"] = healthy;
    o["method"] = "logical";
    o["direction"] = "reverse";
    o["subscription"] = sub;
    o["lag"] = to_json(lag);
    ctx.print_json(o);
    return healthy ? kExitOk : kExitCheckFailed;
  }
  *ctx.out << "logical, reverse (target -> source, built by the flip): subscription " << sub
           << " on the source" << (p.enabled ? " enabled" : " DISABLED") << ", apply worker "
           << (p.worker_running ? "running" : "NOT running") << "\n";
  *ctx.out << "lag: " << describe(lag) << "\n";
  if (!p.worker_running) *ctx.out << "fix: check the source's server log for apply errors\n";
  return healthy ? kExitOk : kExitCheckFailed;
}

}  // namespace

int logical_status(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  auto subscriber = connect_subscriber(ctx, target);
  if (!subscriber) return kExitUsage;
  SubscriptionProgress p = read_progress(*subscriber, source_sizes(*source));
  if (!p.error.empty()) return ctx.fail(kExitUsage, "reading the subscription: " + p.error);
  if (!p.exists) {
    SubscriptionProgress back =
        read_progress(*source, source_sizes(*target), reverse_link().subscription);
    if (back.exists) return reverse_status(ctx, *source, *subscriber, back);
  }
  ReplicationLag lag = measure_lag(*source, *subscriber, "logical");
  bool healthy = p.exists && p.enabled && p.worker_running &&
                 p.streaming == static_cast<int>(p.tables.size()) && lag.ok;
  if (ctx.json) {
    auto o = progress_json(p);
    o["ok"] = healthy;
    o["method"] = "logical";
    o["lag"] = to_json(lag);
    ctx.print_json(o);
    return healthy ? kExitOk : kExitCheckFailed;
  }
  if (!p.exists) {
    *ctx.out << "logical: no subscription '" << kSubscription
             << "' on the target (run `replicate start --method logical`)\n";
    return kExitCheckFailed;
  }
  *ctx.out << "logical: subscription " << kSubscription << (p.enabled ? " enabled" : " DISABLED")
           << ", apply worker " << (p.worker_running ? "running" : "NOT running") << "\n";
  for (const auto& t : p.tables) {
    std::string name = t.name;
    if (name.size() < 40) name.resize(40, ' ');
    *ctx.out << "  " << name << " " << state_name(t.state);
    if (t.state == 'd' && t.rows_total > 0)
      *ctx.out << " " << t.rows_copied << "/" << t.rows_total << " rows";
    *ctx.out << "\n";
  }
  *ctx.out << "lag: " << describe(lag) << "\n";
  if (!p.worker_running) *ctx.out << "fix: check the target's server log for apply errors\n";
  return healthy ? kExitOk : kExitCheckFailed;
}

int logical_stop(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  auto state_conn = ctx.connect(target->spec(), "target", ctx.settings.target_origin);
  if (!state_conn) return kExitUsage;
  auto subscriber = connect_subscriber(ctx, target);
  if (!subscriber) return kExitUsage;
  std::vector<std::string> done, problems;
  PgResult sub = subscriber->exec(subscription_exists_sql(), {std::string(kSubscription)});
  std::string suboid;
  if (sub && sub.rows() > 0) {
    suboid = sub.get(0, 0);
    // Detach the slot first, so dropping the subscription never hangs on an unreachable
    // publisher; the slot is dropped on the source below.
    std::string q = quote_ident(kSubscription);
    PgResult r =
        subscriber->exec_script("ALTER SUBSCRIPTION " + q + " DISABLE; ALTER SUBSCRIPTION " + q +
                                " SET (slot_name = NONE); DROP SUBSCRIPTION " + q);
    if (r)
      done.push_back("dropped subscription " + std::string(kSubscription) + " on the target");
    else
      problems.push_back("DROP SUBSCRIPTION " + std::string(kSubscription) +
                         " on the target: " + r.error().message);
  }
  // The slot (and table-sync slots of an interrupted copy): retried while the walsender exits.
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (true) {
    PgResult slots = source->exec(
        "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = $1 OR "
        "($2 <> '' AND slot_name LIKE 'pg\\_' || $2 || '\\_sync\\_%')",
        {std::string(kSlot), suboid});
    if (!slots || slots.rows() == 0) break;
    bool busy = false;
    for (int i = 0; i < slots.rows(); ++i) {
      if (slots.get_bool(i, 1)) {
        busy = true;
        continue;
      }
      PgResult d = source->exec("SELECT pg_drop_replication_slot($1)", {slots.get(i, 0)});
      if (d)
        done.push_back("dropped slot " + slots.get(i, 0) + " on the source");
      else
        busy = true;
    }
    if (!busy) break;
    if (Clock::now() >= deadline) {
      problems.push_back("slot " + std::string(kSlot) +
                         " is still in use on the source; drop it with SELECT "
                         "pg_drop_replication_slot('" +
                         kSlot + "') once its subscriber is gone");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (const char* pub : {kPublication, kInsertOnlyPublication}) {
    auto exists = source->value("SELECT count(*) FROM pg_publication WHERE pubname = $1", {pub});
    if (!exists || *exists == "0") continue;
    PgResult r = source->exec_script(std::string("DROP PUBLICATION ") + quote_ident(pub));
    if (r)
      done.push_back(std::string("dropped publication ") + pub + " on the source");
    else
      problems.push_back(std::string("DROP PUBLICATION ") + pub + ": " + r.error().message);
  }
  PgError e;
  if (problems.empty()) record_method(*state_conn, "", {}, e);
  if (ctx.json) {
    ctx.print_json(json::object{{"ok", problems.empty()},
                                {"method", "logical"},
                                {"done", json::array(done.begin(), done.end())},
                                {"problems", json::array(problems.begin(), problems.end())}});
  } else {
    if (done.empty() && problems.empty()) *ctx.out << "logical: nothing to stop\n";
    for (const auto& d : done) *ctx.out << d << "\n";
    for (const auto& p : problems) *ctx.out << "could not: " << p << "\n";
  }
  return problems.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace pgcutover::control
