// The state of one cutover run (flip, revert, recover): its connections, options and what has
// been done so far, so that a rollback undoes exactly that. The steps live in flip_steps.cpp,
// the rollback in flip_rollback.cpp, the commands that run them in flip.cpp.
#pragma once

#include "control/cutover/flip.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/command/proxy_fleet.h"
#include "control/cutover/flip_connections.h"
#include "control/cutover/journal.h"
#include "control/cutover/pause_figures.h"
#include "control/replication/link.h"
#include "control/replication/method.h"

namespace pgcutover::control {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

inline long opt_long(CommandContext& ctx, const char* name, long fallback) {
  return ctx.args.has(name) ? static_cast<long>(std::stod(ctx.args.get(name))) : fallback;
}

struct Cutover {
  CommandContext& ctx;
  Direction dir = Direction::kForward;
  // The replication that feeds the destination; lossy_revert_method() for a revert that
  // has no way back.
  const ReplicationMethod* method = nullptr;
  Journal journal;
  std::string run_id;
  ProxyFleet fleet;
  bool dry_run = false;

  std::optional<PgConn> source, target, source_admin, target_admin;  // flip_connections.h

  // Options.
  long drain_timeout_ms = 5000, max_pause_ms = 30000, catch_up_timeout_ms = 30000;
  long max_lag_bytes = 16 * 1024 * 1024, max_validation_age_s = 86400;
  double max_lag_s = 5;
  long sequence_margin = 1000;
  std::vector<std::string> fence_roles;
  std::string smoke_url;

  // What has been done (drives rollback).
  bool reverse_possible = false;
  std::string reverse_why_not;
  // No logical link back, but a capture on the destination (the trigger method's, also for a
  // logical run whose source cannot subscribe): installed in step 1, armed in step 6.
  bool way_back = false;
  bool way_back_armed = false;  // step 6 armed it (a rollback undoes what arming changed)
  std::vector<uint64_t> epochs;
  bool paused = false, fenced = false, swapped = false, flip_started = false;
  std::vector<std::string> fenced_roles;
  bool authority_recorded = false;  // the fleet's databases were told the destination
  // The rollback could not remove the fence (the side being left stopped answering, say): the
  // run stays open in the journal so that `recover` removes it once that side is back.
  bool fence_left = false;
  // What each proxy answered to the pause (state, backend, epoch): the flip step reads the
  // epochs from here instead of asking again while the gates are closed.
  std::vector<ProxyAnswer> paused_answers;
  // The side being left's backend processes that the paused proxies hold (their pause answers'
  // quiet_server_pids): quiet until the gates reopen, so the fence spares them.
  std::vector<int> proxies_quiet_pids;
  std::string fleet_problems;  // why a channel database did not open

  // Report.
  std::shared_ptr<FlipMemo> method_memo;  // what the method read before the pause
  json::array steps;
  json::array notes;
  PauseFigures figures;  // the write pause the clients saw, and the controller's span
  std::string failure;

  // The destination still fenced from an earlier revert. A role setting is read once, at
  // login, so the step-1 prewarm asks for connections that log in writable anyway (the proxies
  // would discard read-only ones, and every held client would open its own connection after
  // the gate reopens: TLS and SCRAM, hundreds of ms for a dozen at once). The fence itself is
  // lifted right after the source's, long before any gate opens on the destination.
  bool to_fenced = false;
  bool to_unfenced = false;  // the fence step lifted that fence

  Cutover(CommandContext& c, Direction d)
      : ctx(c),
        dir(d),
        journal(c.args.get("journal", c.settings.journal)),
        fleet(c.settings.proxies, milliseconds(opt_long(c, "admin-timeout", 5) * 1000)) {}

  PgConn& from() { return dir == Direction::kForward ? *source : *target; }
  PgConn& to() { return dir == Direction::kForward ? *target : *source; }
  PgConn& from_admin() { return dir == Direction::kForward ? *source_admin : *target_admin; }
  PgConn& to_admin() { return dir == Direction::kForward ? *target_admin : *source_admin; }
  std::string from_name() const { return from_backend(dir); }
  std::string to_name() const { return to_backend(dir); }
  // The replication that feeds the destination now, and the one that will feed the side
  // being left afterwards.
  LinkNames current_link() const {
    return dir == Direction::kForward ? forward_link() : reverse_link();
  }
  LinkNames next_link() const {
    return dir == Direction::kForward ? reverse_link() : forward_link();
  }
  // Where each link's subscription lives: forward on the target, reverse on the source.
  std::string publisher_conninfo_for(const LinkNames& link) {
    if (link.subscription == forward_link().subscription) {
      std::string u = ctx.args.get("publisher-url");
      return u.empty() ? source->spec().conninfo() : u;
    }
    std::string u = ctx.args.get("reverse-publisher-url");
    return u.empty() ? target->spec().conninfo() : u;
  }
  PgConn& subscriber_of(const LinkNames& link) {
    return link.subscription == forward_link().subscription ? *target_admin : *source_admin;
  }
  PgConn& publisher_of(const LinkNames& link) {
    return link.subscription == forward_link().subscription ? *source_admin : *target_admin;
  }

  std::string method_name() const { return method ? std::string(method->name()) : ""; }
  FlipSides sides() {
    return {from(),       to(),       from_admin(), from_name(), to_name(), current_link().slot,
            &method_memo, &to_admin()};
  }
  FlipLimits limits() const {
    return {milliseconds(catch_up_timeout_ms), max_lag_bytes, max_lag_s, ctx.args.get("jobs", "4")};
  }
  // Takes a method's answer into the step's data and failure.
  bool take(FlipStepResult r, json::object& d) {
    for (auto& kv : r.data) d[kv.key()] = kv.value();
    if (!r.ok) failure = r.failure;
    return r.ok;
  }

  void say(const std::string& s) { ctx.say(s); }

  bool log(json::object rec, bool sync = true) {
    rec["run"] = run_id;
    rec["t"] = static_cast<double>(std::time(nullptr));
    std::string e;
    if (!journal.append(rec, e, sync)) {
      failure = e;
      return false;
    }
    return true;
  }

  void test_hook_before(FlipStep s) {
    const char* h = std::getenv("PGCUTOVER_TEST_HOOK_BEFORE_STEP");
    if (!h) return;
    std::string v = h;
    auto colon = v.find(':');
    if (colon == std::string::npos || v.substr(0, colon) != step_name(s)) return;
    int rc = std::system(v.substr(colon + 1).c_str());
    (void)rc;
  }

  void crash_hook_after(FlipStep s) {
    const char* c = std::getenv("PGCUTOVER_CRASH_AFTER_STEP");
    if (c && std::string(c) == step_name(s)) {
      std::fflush(nullptr);
      _exit(99);  // test hook: a controller dying with the step journaled and nothing else
    }
  }

  // Runs one step: journal start, the body, timing, journal done (written; the next record fsyncs
  // it) or failure.
  template <typename F>
  bool step(FlipStep s, F&& body) {
    test_hook_before(s);
    auto tj = Clock::now();
    if (!dry_run && !log({{"event", "start"}, {"step", step_name(s)}}, start_needs_sync(s)))
      return false;
    auto t0 = Clock::now();
    json::object data;
    bool ok = body(data);
    double ms = ms_between(t0, Clock::now());
    // The journal's durable write before the body (inside the pause it holds writes too).
    json::object st{{"step", step_name(s)},
                    {"ok", ok},
                    {"ms", ms},
                    {"journal_ms", ms_between(tj, t0)},
                    {"data", data}};
    if (!ok) st["error"] = failure;
    steps.push_back(st);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%8.1f ms  ", ms);
    say(std::string(ok ? "  ok  " : "  FAIL") + "  " + std::to_string(static_cast<int>(s)) + " " +
        step_name(s) + std::string(14 - std::string(step_name(s)).size(), ' ') + buf +
        (ok ? summary_of(data) : failure));
    if (!ok) return false;
    if (!dry_run) {
      // Not fsync'd on its own (journal.h): the next record's fsync carries it.
      if (!log({{"event", "done"}, {"step", step_name(s)}, {"ms", ms}, {"data", data}},
               /*sync=*/false))
        return false;
      crash_hook_after(s);
    }
    return true;
  }

  static std::string summary_of(const json::object& d) {
    auto it = d.find("summary");
    return it != d.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
  }

  // ---- connections ----
  bool connect_all() {
    FlipConnections k;
    if (!connect_flip_sides(ctx, k)) return false;
    source = std::move(k.source);
    target = std::move(k.target);
    source_admin = std::move(k.source_admin);
    target_admin = std::move(k.target_admin);
    return true;
  }

  std::vector<int> own_pids(PgConn& side_admin, PgConn& side_app) {
    return {side_admin.backend_pid(), side_app.backend_pid()};
  }

  std::vector<std::string> roles_for(PgConn& side) {
    auto r = ctx.args.all("fence-role");
    if (r.empty()) r.push_back(side.spec().get("user"));
    return r;
  }

  // ---- the steps (flip_steps.cpp) ----
  bool preconditions(json::object& d);
  bool pause(json::object& d);
  bool fence_step(json::object& d);
  bool catch_up(json::object& d);
  std::string side_lost(const std::string& error);
  bool sequences(json::object& d);
  bool without_reverse(json::object& d);
  bool replication(json::object& d);
  bool subscribe(json::object& d);
  bool flip(json::object& d);
  bool smoke(json::object& d);
  bool resume(json::object& d);

  // ---- rollback (flip_rollback.cpp): undo exactly what was done, newest first ----
  json::array rollback();

  // `open_run`: the journal's run stays unfinished, for `recover` to complete.
  int finish_report(bool ok, const std::string& outcome, json::array rolled_back = {},
                    bool open_run = false);
};

// Reads the options every cutover command shares and opens the connections.
bool load_common(Cutover& c);

}  // namespace pgcutover::control
