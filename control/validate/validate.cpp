#include "control/validate/validate.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "control/command/exit_codes.h"
#include "control/command/progress.h"
#include "control/db/control_state.h"
#include "control/replication/lag.h"
#include "control/replication/method.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kLeafRows = 16;  // bisect until a range holds at most this many rows
constexpr int kMaxDepth = 40;

std::string key_list(const TableInfo& t) {
  std::string s;
  for (const auto& k : t.primary_key) s += (s.empty() ? "" : ", ") + quote_ident(k);
  return s;
}

// "(k1, k2) >= ($1::t1, $2::t2) AND (k1, k2) < ($3::t1, $4::t2)", parameters numbered from 1.
std::string range_predicate(const TableInfo& t, const KeyRange& r) {
  std::string keys = "(" + key_list(t) + ")";
  std::string pred = "true";
  int n = 1;
  auto tuple = [&](size_t count) {
    std::string s = "(";
    for (size_t i = 0; i < count; ++i)
      s += (i ? ", " : "") + ("$" + std::to_string(n++)) + "::" + t.primary_key_types[i];
    return s + ")";
  };
  if (!r.lower.empty()) pred += " AND " + keys + " >= " + tuple(r.lower.size());
  if (!r.upper.empty()) pred += " AND " + keys + " < " + tuple(r.upper.size());
  return pred;
}

std::vector<Param> range_params(const KeyRange& r) {
  std::vector<Param> p;
  for (const auto& v : r.lower) p.emplace_back(v);
  for (const auto& v : r.upper) p.emplace_back(v);
  return p;
}

std::string row_expr(const TableInfo& t) {
  std::string cols;
  for (const auto& c : t.columns) cols += (cols.empty() ? "" : ", ") + ("t." + quote_ident(c.name));
  return "ROW(" + cols + ")::text";
}

struct Mismatch {
  KeyRange range;
  int64_t source_rows = 0, target_rows = 0;
  std::vector<std::string> keys;  // differing keys, when the range is small enough
};

struct ChunkResult {
  enum Kind { kMatch, kMismatch, kInFlight, kError } kind = kMatch;
  int64_t rows = 0, bytes = 0;
  int attempts = 1;
  std::string error;
  std::vector<Mismatch> mismatches;
  std::vector<KeyRange> in_flight;  // ranges still changing on the source while compared
};

struct ChunkTask {
  size_t table;
  KeyRange range;
};

// Per-row hashes of a small range, keyed by the key's text: names the differing keys.
std::map<std::string, std::string> row_hashes(PgConn& conn, const TableInfo& t, const KeyRange& r) {
  std::map<std::string, std::string> out;
  std::string key_text;
  for (const auto& k : t.primary_key)
    key_text += (key_text.empty() ? "" : " || ', ' || ") + ("t." + quote_ident(k) + "::text");
  PgResult res = conn.exec("SELECT " + key_text + ", md5(" + row_expr(t) + ") FROM " +
                               t.qualified() + " t WHERE " + range_predicate(t, r) + " LIMIT 1000",
                           range_params(r));
  for (int i = 0; res && i < res.rows(); ++i) out[res.get(i, 0)] = res.get(i, 1);
  return out;
}

// Splits at the median key of whichever side has more rows in the range.
std::optional<std::vector<std::string>> median_key(PgConn& conn, const TableInfo& t,
                                                   const KeyRange& r, int64_t rows) {
  std::string cols;
  for (const auto& k : t.primary_key)
    cols += (cols.empty() ? "" : ", ") + ("t." + quote_ident(k) + "::text");
  auto params = range_params(r);
  params.emplace_back(std::to_string(rows / 2));
  PgResult res = conn.exec("SELECT " + cols + " FROM " + t.qualified() + " t WHERE " +
                               range_predicate(t, r) + " ORDER BY " + key_list(t) + " OFFSET $" +
                               std::to_string(params.size()) + "::bigint LIMIT 1",
                           params);
  if (!res || res.rows() == 0) return std::nullopt;
  std::vector<std::string> key;
  for (int c = 0; c < res.columns(); ++c) key.push_back(res.get(0, c));
  return key;
}

// Both sides' digests at (nearly) the same moment: the target's digest runs on its own
// thread, so a replicated change can only fall between them within the replication lag.
std::pair<ChunkDigest, ChunkDigest> digest_both(PgConn& source, PgConn& target, const TableInfo& t,
                                                const KeyRange& r) {
  ChunkDigest d;
  std::thread other([&] { d = digest(target, t, r); });
  ChunkDigest s = digest(source, t, r);
  other.join();
  return {s, d};
}

// The differing keys of a small range.
std::vector<std::string> differing_keys(PgConn& source, PgConn& target, const TableInfo& t,
                                        const KeyRange& r) {
  std::vector<std::string> keys;
  auto a = row_hashes(source, t, r), b = row_hashes(target, t, r);
  for (const auto& [k, h] : a) {
    auto it = b.find(k);
    if (it == b.end())
      keys.push_back("(" + k + ") only on source");
    else if (it->second != h)
      keys.push_back("(" + k + ") differs");
  }
  for (const auto& [k, h] : b)
    if (!a.count(k)) keys.push_back("(" + k + ") only on target");
  return keys;
}

struct CheckContext {
  PgConn& source;
  PgConn& target;
  const TableInfo& table;
  std::string method;
  int retries;
};

// Compares one key range, and narrows a difference down. While replication runs, a
// difference is re-checked after the target has applied the source's current position
// (`retries` times); one that does not go away is split at the median key and each half
// checked the same way, so a busy chunk shrinks to the few rows that are really changing
// right now ("in flight") and a real difference shrinks to its keys. Without replication
// (dump) there is nothing to wait for: a difference is real and only bisected.
void check_range(CheckContext& c, const KeyRange& r, int depth, ChunkResult& out) {
  const TableInfo& t = c.table;
  const ReplicationMethod* method = find_method(c.method);
  bool replicating = method && method->proves_catch_up();
  auto [s, d] = digest_both(c.source, c.target, t, r);
  if (!s.ok || !d.ok) {
    out.kind = ChunkResult::kError;
    out.error = s.ok ? "target: " + d.error : "source: " + s.error;
    return;
  }
  if (depth == 0) {
    out.rows = s.rows;
    out.bytes = s.bytes;
  }
  bool stable = !replicating;  // both digests unchanged across a catch-up
  for (int attempt = 0; !(s == d) && replicating && attempt < c.retries; ++attempt) {
    out.attempts++;
    if (!method->wait_caught_up(c.source, c.target, std::chrono::seconds(30))) {
      out.in_flight.push_back(r);
      out.error = "the target did not catch up within 30s";
      return;
    }
    auto [s2, d2] = digest_both(c.source, c.target, t, r);
    if (!s2.ok || !d2.ok) break;
    stable = s2 == s && d2 == d;
    s = s2;
    d = d2;
    if (stable) break;
  }
  if (s == d) return;

  bool leaf = t.primary_key.empty() || depth >= kMaxDepth || std::max(s.rows, d.rows) <= kLeafRows;
  std::optional<std::vector<std::string>> mid;
  if (!leaf) {
    mid =
        s.rows >= d.rows ? median_key(c.source, t, r, s.rows) : median_key(c.target, t, r, d.rows);
    // A median equal to the lower bound cannot split further.
    if (!mid || (!r.lower.empty() && *mid == r.lower)) leaf = true;
  }
  if (leaf) {
    if (!stable) {
      out.in_flight.push_back(r);
      return;
    }
    Mismatch m{r, s.rows, d.rows, {}};
    if (!t.primary_key.empty() && std::max(s.rows, d.rows) <= kLeafRows * 4)
      m.keys = differing_keys(c.source, c.target, t, r);
    out.mismatches.push_back(std::move(m));
    return;
  }
  check_range(c, KeyRange{r.lower, *mid}, depth + 1, out);
  check_range(c, KeyRange{*mid, r.upper}, depth + 1, out);
}

ChunkResult compare_chunk(PgConn& source, PgConn& target, const TableInfo& t, const KeyRange& r,
                          const std::string& method, int retries) {
  ChunkResult res;
  CheckContext c{source, target, t, method, retries};
  check_range(c, r, 0, res);
  if (res.kind != ChunkResult::kError) {
    res.kind = !res.mismatches.empty()  ? ChunkResult::kMismatch
               : !res.in_flight.empty() ? ChunkResult::kInFlight
                                        : ChunkResult::kMatch;
  }
  return res;
}

// Chunk boundaries from the source: every chunk_rows-th key in key order (one index scan).
std::optional<std::vector<KeyRange>> plan_chunks(PgConn& source, const TableInfo& t,
                                                 int64_t chunk_rows, std::string& error) {
  if (t.primary_key.empty()) return std::vector<KeyRange>{KeyRange{}};
  std::string cols, keys = key_list(t);
  for (const auto& k : t.primary_key)
    cols += (cols.empty() ? "" : ", ") + ("s." + quote_ident(k) + "::text");
  PgResult r =
      source.exec("SELECT " + cols + " FROM (SELECT " + keys + ", row_number() OVER (ORDER BY " +
                      keys + ") AS pgcutover_rn FROM " + t.qualified() +
                      ") s WHERE s.pgcutover_rn % $1::bigint = 0 ORDER BY " + "s.pgcutover_rn",
                  {std::to_string(chunk_rows)});
  if (!r) {
    error = r.error().message;
    return std::nullopt;
  }
  std::vector<KeyRange> ranges;
  std::vector<std::string> prev;
  for (int i = 0; i < r.rows(); ++i) {
    std::vector<std::string> key;
    for (int c = 0; c < r.columns(); ++c) key.push_back(r.get(i, c));
    ranges.push_back({prev, key});
    prev = key;
  }
  ranges.push_back({prev, {}});
  return ranges;
}

}  // namespace

std::string digest_sql(const TableInfo& t, const KeyRange& range) {
  return "SELECT count(*), coalesce(sum(('x' || substr(md5(r), 1, 16))::bit(64)::bigint), 0)"
         "::text, coalesce(sum(octet_length(r)), 0)::bigint FROM (SELECT " +
         row_expr(t) + " AS r FROM " + t.qualified() + " t WHERE " +
         (t.primary_key.empty() ? std::string("true") : range_predicate(t, range)) + ") s";
}

ChunkDigest digest(PgConn& conn, const TableInfo& t, const KeyRange& range) {
  ChunkDigest d;
  PgResult r = conn.exec(digest_sql(t, range),
                         t.primary_key.empty() ? std::vector<Param>{} : range_params(range));
  if (!r) {
    d.error = r.error().message;
    return d;
  }
  d.ok = true;
  d.rows = r.get_int(0, 0);
  d.sum = r.get(0, 1);
  d.bytes = r.get_int(0, 2);
  return d;
}

std::string describe_range(const TableInfo& t, const KeyRange& r) {
  if (t.primary_key.empty()) return "whole table (no primary key)";
  auto tuple = [&](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return v.size() > 1 ? "(" + s + ")" : s;
  };
  std::string keys = t.primary_key.size() > 1 ? "(" + key_list(t) + ")" : t.primary_key[0];
  if (r.lower.empty() && r.upper.empty()) return "all " + keys;
  if (r.lower.empty()) return keys + " < " + tuple(r.upper);
  if (r.upper.empty()) return keys + " >= " + tuple(r.lower);
  return keys + " >= " + tuple(r.lower) + " and < " + tuple(r.upper);
}

int cmd_validate(CommandContext& ctx) {
  auto source_conn = ctx.connect_source();
  if (!source_conn) return kExitUsage;
  auto target_conn = ctx.connect_target();
  if (!target_conn) return kExitUsage;
  // --reverse: after a flip the target is the truth and the source the copy (before a revert);
  // `source` and `target` below are the direction's ends. The result is recorded on the target
  // either way, under its own key, for `revert` to read.
  bool reverse = ctx.args.has("reverse");
  auto& source = reverse ? target_conn : source_conn;
  auto& target = reverse ? source_conn : target_conn;
  std::string method = ctx.args.get("method");
  if (method.empty()) method = recorded_method(*target_conn);
  int jobs = std::max(1, std::atoi(ctx.args.get("jobs", "4").c_str()));
  int64_t chunk_rows =
      std::max<int64_t>(100, std::atoll(ctx.args.get("chunk-rows", "50000").c_str()));
  int retries = std::atoi(ctx.args.get("retries", "3").c_str());
  bool sample = ctx.args.has("sample");
  double sample_pct = std::stod(ctx.args.get("sample-percent", "10"));
  auto only = ctx.args.all("table");

  PgError e;
  auto all_tables = list_user_tables(*source, true, e);
  if (!all_tables)
    return ctx.fail(kExitUsage, std::string("listing the ") + (reverse ? "target" : "source") +
                                    "'s tables: " + e.message);
  std::vector<TableInfo> tables;
  for (auto& t : *all_tables) {
    if (t.unlogged) continue;  // never replicated; preflight reports them
    if (!only.empty() && std::find(only.begin(), only.end(), t.display()) == only.end() &&
        std::find(only.begin(), only.end(), t.name) == only.end())
      continue;
    tables.push_back(t);
  }
  if (!only.empty() && tables.empty())
    return ctx.fail(kExitUsage, "no table matches --table (use schema.table as in preflight)");

  // Plan: chunk boundaries from the source, then the (sampled) task list.
  std::vector<ChunkTask> tasks;
  std::vector<size_t> chunks_per_table(tables.size(), 0);
  std::mt19937_64 rng(std::random_device{}());
  for (size_t i = 0; i < tables.size(); ++i) {
    std::string err;
    auto ranges = plan_chunks(*source, tables[i], chunk_rows, err);
    if (!ranges)
      return ctx.fail(kExitUsage, "planning chunks of " + tables[i].display() + ": " + err);
    if (sample && ranges->size() > 1) {
      std::shuffle(ranges->begin(), ranges->end(), rng);
      size_t keep =
          std::max<size_t>(1, static_cast<size_t>(ranges->size() * sample_pct / 100.0 + 0.5));
      ranges->resize(std::min(keep, ranges->size()));
    }
    chunks_per_table[i] = ranges->size();
    for (auto& r : *ranges) tasks.push_back({i, std::move(r)});
  }

  // Workers: one source and one target connection each.
  struct Outcome {
    size_t table;
    KeyRange range;
    ChunkResult result;
  };
  std::vector<Outcome> outcomes;
  std::mutex mu;
  std::atomic<size_t> next{0}, done{0};
  std::atomic<int64_t> bytes_done{0};
  std::string connect_error;
  auto t0 = Clock::now();
  std::vector<std::thread> workers;
  int n_workers = std::min<int>(jobs, static_cast<int>(std::max<size_t>(1, tasks.size())));
  for (int w = 0; w < n_workers; ++w) {
    workers.emplace_back([&] {
      PgError ce;
      auto s = PgConn::connect(source->spec(), ctx.connect_timeout, "source", ce);
      auto d =
          s ? PgConn::connect(target->spec(), ctx.connect_timeout, "target", ce) : std::nullopt;
      if (!s || !d) {
        std::lock_guard<std::mutex> lock(mu);
        connect_error = ce.message;
        return;
      }
      const char* session =
          "SET extra_float_digits = 3; SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; "
          "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'";
      s->exec_script(session);
      d->exec_script(session);
      for (size_t i; (i = next.fetch_add(1)) < tasks.size();) {
        const ChunkTask& task = tasks[i];
        ChunkResult r = compare_chunk(*s, *d, tables[task.table], task.range, method, retries);
        bytes_done += r.bytes;
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back({task.table, task.range, std::move(r)});
        done++;
      }
    });
  }
  ProgressBar bar(*ctx.out, ctx.tty);
  while (done.load() < tasks.size()) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!connect_error.empty()) break;
    }
    if (!ctx.json && tasks.size() > 1) {
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      bar.update(static_cast<double>(done.load()) / tasks.size(),
                 std::to_string(done.load()) + "/" + std::to_string(tasks.size()) + " chunks, " +
                     format_bytes(bytes_done.load() / std::max(secs, 0.001)) + "/s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& w : workers) w.join();
  if (!connect_error.empty()) return ctx.fail(kExitUsage, connect_error);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!ctx.json && tasks.size() > 1)
    bar.finish("compared " + std::to_string(tasks.size()) + " chunks");

  // Report per table.
  struct TableReport {
    int64_t rows = 0, bytes = 0;
    size_t chunks = 0, mismatched = 0, in_flight = 0, errors = 0;
    std::vector<std::string> lines;
    json::array mismatches;
    json::array in_flight_ranges;
  };
  std::vector<TableReport> reports(tables.size());
  std::sort(outcomes.begin(), outcomes.end(), [](const Outcome& a, const Outcome& b) {
    return a.table != b.table ? a.table < b.table : a.range.lower < b.range.lower;
  });
  for (const auto& o : outcomes) {
    TableReport& tr = reports[o.table];
    const TableInfo& t = tables[o.table];
    tr.chunks++;
    tr.rows += o.result.rows;
    tr.bytes += o.result.bytes;
    switch (o.result.kind) {
      case ChunkResult::kMatch:
        break;
      case ChunkResult::kInFlight:
        tr.in_flight++;
        for (const auto& r : o.result.in_flight) {
          tr.lines.push_back("still in flight: " + describe_range(t, r) +
                             (o.result.error.empty() ? "" : " (" + o.result.error + ")"));
          tr.in_flight_ranges.emplace_back(describe_range(t, r));
        }
        break;
      case ChunkResult::kError:
        tr.errors++;
        tr.lines.push_back("error: " + describe_range(t, o.range) + ": " + o.result.error);
        break;
      case ChunkResult::kMismatch:
        tr.mismatched++;
        for (const auto& r : o.result.in_flight) {
          tr.lines.push_back("still in flight: " + describe_range(t, r));
          tr.in_flight_ranges.emplace_back(describe_range(t, r));
        }
        for (const auto& m : o.result.mismatches) {
          std::string keys;
          for (const auto& k : m.keys) keys += (keys.empty() ? "" : "; ") + k;
          tr.lines.push_back("MISMATCH " + describe_range(t, m.range) + ": source " +
                             std::to_string(m.source_rows) + " rows, target " +
                             std::to_string(m.target_rows) + " rows" +
                             (keys.empty() ? "" : " [" + keys + "]"));
          json::array ka;
          for (const auto& k : m.keys) ka.emplace_back(k);
          tr.mismatches.push_back(
              json::object{{"range", describe_range(t, m.range)},
                           {"lower", json::array(m.range.lower.begin(), m.range.lower.end())},
                           {"upper", json::array(m.range.upper.begin(), m.range.upper.end())},
                           {"source_rows", m.source_rows},
                           {"target_rows", m.target_rows},
                           {"keys", ka}});
        }
        break;
    }
  }
  int64_t total_bytes = 0, total_rows = 0;
  size_t bad = 0, flight = 0, errors = 0;
  json::array tj;
  for (size_t i = 0; i < tables.size(); ++i) {
    const auto& r = reports[i];
    total_bytes += r.bytes;
    total_rows += r.rows;
    bad += r.mismatched;
    flight += r.in_flight;
    errors += r.errors;
    std::string status = r.errors       ? "error"
                         : r.mismatched ? "mismatch"
                         : r.in_flight  ? "in_flight"
                                        : "ok";
    tj.push_back(json::object{{"table", tables[i].display()},
                              {"status", status},
                              {"chunks", r.chunks},
                              {"rows", r.rows},
                              {"bytes", r.bytes},
                              {"mismatched_chunks", r.mismatched},
                              {"in_flight_chunks", r.in_flight},
                              {"mismatches", r.mismatches},
                              {"in_flight", r.in_flight_ranges}});
  }
  bool ok = bad == 0 && flight == 0 && errors == 0;
  double mbps = total_bytes / 1048576.0 / std::max(secs, 0.001);
  json::object summary{{"ok", ok},
                       {"method", method},
                       {"sample", sample},
                       {"tables", tables.size()},
                       {"chunks", tasks.size()},
                       {"rows", total_rows},
                       {"bytes", total_bytes},
                       {"seconds", secs},
                       {"mb_per_second", mbps},
                       {"mismatched_chunks", bad},
                       {"in_flight_chunks", flight},
                       {"errors", errors},
                       {"finished_at_unix", static_cast<int64_t>(std::time(nullptr))}};
  PgError se;
  summary["direction"] = reverse ? "reverse" : "forward";
  // For `status` and the flip's precondition (forward), `revert`'s (reverse); best effort.
  write_control_state(*target_conn, reverse ? "validation_reverse" : "validation", summary, se);
  if (ctx.json) {
    summary["table_results"] = tj;
    ctx.print_json(summary);
    return ok ? kExitOk : kExitCheckFailed;
  }
  for (size_t i = 0; i < tables.size(); ++i) {
    const auto& r = reports[i];
    std::string name = tables[i].display();
    if (name.size() < 36) name.resize(36, ' ');
    std::string status = r.errors       ? "ERROR"
                         : r.mismatched ? "MISMATCH"
                         : r.in_flight  ? "IN FLIGHT"
                                        : "ok";
    *ctx.out << "  " << name << " " << status << "  " << r.rows << " rows, " << r.chunks
             << " chunk(s)" << (tables[i].primary_key.empty() ? " (no key: whole table)" : "")
             << "\n";
    for (const auto& l : r.lines) *ctx.out << "      " << l << "\n";
  }
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f MB/s", mbps);
  *ctx.out << (reverse ? "validate --reverse (target -> source): " : "validate: ")
           << (ok ? "OK" : "FAILED") << " - " << tables.size() << " tables, " << tasks.size()
           << (sample ? " sampled" : "") << " chunks, " << total_rows << " rows, "
           << format_bytes(static_cast<double>(total_bytes)) << " in " << format_seconds(secs)
           << " (" << rate << " per side)\n";
  if (!ok && flight)
    *ctx.out << "  chunks still in flight kept changing on the source: re-run validate, or "
                "validate during the cutover pause\n";
  return ok ? kExitOk : kExitCheckFailed;
}

std::string reverse_validation_failed(PgConn& target) {
  auto v = read_control_state(target, "validation_reverse");
  if (!v) return {};
  bool ok = v->contains("ok") && v->at("ok").is_bool() && v->at("ok").as_bool();
  if (ok) return {};
  return "the last `validate --reverse` found the source different from the target: a revert "
         "would not bring back what differs. Find the cause (the way-back capture broken? "
         "`lag --reverse`), validate --reverse again, or pass --force to revert anyway";
}

std::string validation_fresh(PgConn& target, long max_age_s, std::optional<int64_t>& age_s) {
  auto v = read_control_state(target, "validation");
  if (!v) return "never validated: run `pgcutoverctl validate` (or --max-validation-age 0)";
  bool ok = v->contains("ok") && v->at("ok").is_bool() && v->at("ok").as_bool();
  int64_t at = v->contains("finished_at_unix") ? v->at("finished_at_unix").to_number<int64_t>() : 0;
  age_s = std::time(nullptr) - at;
  if (!ok) return "the last validation failed: fix it and validate again";
  if (*age_s > max_age_s)
    return "the last validation is " + format_seconds(static_cast<double>(*age_s)) +
           " old (--max-validation-age " + std::to_string(max_age_s) + ")";
  return {};
}

}  // namespace pgcutover::control
