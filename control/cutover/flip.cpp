// The cutover run: nine journaled, timed steps (flip_plan.h), automatic rollback of any
// failure before traffic resumes, and recovery from the journal. One struct, Cutover, holds
// the connections and what has been done so far, so rollback undoes exactly that.
#include "control/cutover/flip.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <thread>

#include "control/command/exit_codes.h"
#include "control/command/proxy_fleet.h"
#include "control/cutover/fence.h"
#include "control/cutover/flip_connections.h"
#include "control/cutover/journal.h"
#include "control/cutover/pause_figures.h"
#include "control/cutover/recovery_source.h"
#include "control/cutover/sequences.h"
#include "control/cutover/smoke_test.h"
#include "control/db/control_state.h"
#include "control/replication/link.h"
#include "control/replication/method.h"
#include "control/validate/validate.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

long opt_long(CommandContext& ctx, const char* name, long fallback) {
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
  // No logical link back, but the method keeps a capture on the destination (trigger):
  // installed in step 1, armed in step 6.
  bool way_back = false;
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
    return {from(), to(), from_admin(), from_name(), to_name(), current_link().slot, &method_memo};
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

  bool log(json::object rec) {
    rec["run"] = run_id;
    rec["t"] = static_cast<double>(std::time(nullptr));
    std::string e;
    if (!journal.append(rec, e)) {
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

  // Runs one step: journal start, the body, timing, journal done (fsync'd) or failure.
  template <typename F>
  bool step(FlipStep s, F&& body) {
    test_hook_before(s);
    if (!dry_run && !log({{"event", "start"}, {"step", step_name(s)}})) return false;
    auto t0 = Clock::now();
    json::object data;
    bool ok = body(data);
    double ms = ms_between(t0, Clock::now());
    json::object st{{"step", step_name(s)}, {"ok", ok}, {"ms", ms}, {"data", data}};
    if (!ok) st["error"] = failure;
    steps.push_back(st);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%8.1f ms  ", ms);
    say(std::string(ok ? "  ok  " : "  FAIL") + "  " + std::to_string(static_cast<int>(s)) + " " +
        step_name(s) + std::string(14 - std::string(step_name(s)).size(), ' ') + buf +
        (ok ? summary_of(data) : failure));
    if (!ok) return false;
    if (!dry_run) {
      if (!log({{"event", "done"}, {"step", step_name(s)}, {"ms", ms}, {"data", data}}))
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

  // ---- the steps ----
  bool preconditions(json::object& d) {
    // Going back: not over a difference the last reverse validation found.
    if (dir == Direction::kBackward && !ctx.args.has("force")) {
      failure = reverse_validation_failed(*target);
      if (!failure.empty()) return false;
    }

    auto st = fleet.status();
    d["proxies"] = to_json(st);
    if (fleet.size() == 0) {
      failure =
          "no proxies: none in [[control.proxies]] and no live fleet member (`pgcutoverctl "
          "fleet`)" +
          (fleet_problems.empty() ? std::string() : " (fleet channel: " + fleet_problems + ")");
      return false;
    }
    uint64_t epoch = 0;
    failure = all_running_on(st, from_name(), epoch);
    if (!failure.empty()) return false;
    epochs.clear();
    for (const auto& a : st) epochs.push_back(a.epoch);
    d["epoch"] = epoch;

    // Replication health: how far behind the destination is right now.
    if (!take(method->flip_ready(sides(), limits()), d)) return false;

    // Validation recent enough (forward only: a revert goes back to the original).
    if (dir == Direction::kForward && max_validation_age_s > 0) {
      std::optional<int64_t> age;
      failure = validation_fresh(*target, max_validation_age_s, age);
      if (age) d["validation_age_s"] = *age;
      if (!failure.empty()) return false;
    }

    // Reverse replication: possible only when the side being left can subscribe.
    reverse_possible = method->can_reverse(from_admin(), from_name(), reverse_why_not);
    d["reverse_replication"] = reverse_possible;
    if (!reverse_possible && !dry_run) {
      std::string why;
      way_back = method->prepare_way_back(sides(), why);
      if (!way_back && why != reverse_why_not) reverse_why_not += "; " + why;
      d["way_back"] = way_back ? method_name() + " capture on the " + to_name() : "none";
    }
    // The reverse publications cost nothing and need not wait for the pause (step 6 makes the
    // slot, which must come after them).
    if (reverse_possible && !dry_run &&
        !create_publications(to_admin(), next_link(), from_admin(), current_link(), failure))
      return false;
    if (!reverse_possible && !way_back) {
      std::string note = "NO REVERSE REPLICATION: " + reverse_why_not + ". Writes made on the " +
                         to_name() +
                         " after the flip cannot be carried back: step 7 (flip) is the point of "
                         "no return.";
      notes.push_back(json::string(note));
      say("  note  " + note);
    }

    // Warm pools to the destination now: a flip from PAUSED does not prewarm. A destination
    // still fenced gets writable connections (see to_fenced).
    to_fenced = roles_fenced(to_admin(), roles_for(to()));
    d["destination_fenced"] = to_fenced;
    auto pw = fleet.prewarm(to_name(), 5000, to_fenced);
    if (!all_ok(pw)) {
      failure = "prewarm of " + to_name() + " failed: " + describe_failures(pw);
      return false;
    }
    d["summary"] = "epoch " + std::to_string(epoch) + ", " + std::to_string(fleet.size()) +
                   " proxies running on " + from_name() + ", " + to_name() + " prewarmed";
    return true;
  }

  bool pause(json::object& d) {
    auto t0 = Clock::now();
    figures.pause_sent(t0);
    auto a = fleet.pause(static_cast<int>(drain_timeout_ms), static_cast<int>(max_pause_ms));
    paused = true;  // some proxies may be paused even when others failed
    d["proxies"] = to_json(a);
    if (!all_ok(a)) {
      failure = "pause: " + describe_failures(a);
      return false;
    }
    for (const auto& x : a)
      if (x.state != "paused") {
        failure = "pause: " + x.admin_url + " answered state " + x.state;
        return false;
      }
    paused_answers = a;
    d["summary"] = std::to_string(a.size()) + " proxies paused in " +
                   std::to_string(static_cast<int>(ms_between(t0, Clock::now()))) + " ms";
    return true;
  }

  bool fence_step(json::object& d) {
    auto roles = roles_for(from());
    fenced_roles = roles;
    fenced = true;  // before the call: a partial fence is undone as a whole
    // The catch-up's head start runs beside the fence on the sessions the fence spares, so
    // the pause holds writes for the longer of the two rather than their sum.
    FlipStepResult head;
    auto head_started = Clock::now();
    double head_ms = 0;
    std::thread head_start([&] {
      head = method->flip_head_start(sides(), limits());
      head_ms = ms_between(head_started, Clock::now());
    });
    FenceResult r = fence(from_admin(), roles, own_pids(from_admin(), from()));
    double fence_ms = ms_between(head_started, Clock::now());
    head_start.join();
    json::object hs = std::move(head.data);
    hs["ok"] = head.ok;
    hs["ms"] = head_ms;
    if (!head.ok) hs["error"] = head.failure;  // the catch-up step meets it again
    d["catch_up_head_start"] = hs;
    d["fence_ms"] = fence_ms;
    json::array jr;
    for (const auto& x : roles) jr.emplace_back(x);
    d["roles"] = jr;
    d["sessions_terminated"] = r.sessions_terminated;
    if (!r.ok) {
      failure = side_lost(r.error);
      return false;
    }
    if (to_fenced && !dry_run) {
      // Nothing writes to the side being left any more: the destination's fence can go now
      // (the sequences step lifts it otherwise).
      FenceResult u = unfence(to_admin(), roles_for(to()));
      if (u.ok) d["destination_unfenced"] = true;
    }
    d["summary"] = std::to_string(roles.size()) + " role(s) read-only on " + from_name() + ", " +
                   std::to_string(r.sessions_terminated) + " session(s) ended in " +
                   std::to_string(static_cast<int>(fence_ms)) + " ms; catch-up head start " +
                   std::to_string(static_cast<int>(head_ms)) + " ms";
    return true;
  }

  bool catch_up(json::object& d) {
    if (take(method->flip_catch_up(sides(), limits()), d)) return true;
    failure = side_lost(failure);
    return false;
  }

  // A failure on the side being left whose connection broke: say that side stopped answering,
  // which is what the operator has to act on, rather than the statement that noticed it.
  std::string side_lost(const std::string& error) {
    if (!from_admin().lost() && !from().lost()) return error;
    return "the " + from_name() + " (" + from().spec().display() +
           ") stopped answering during the pause (" + error + "): the " + to_name() +
           " cannot be proven caught up, so nothing was flipped";
  }

  bool sequences(json::object& d) {
    // The destination may still carry a fence from an earlier revert.
    unfence(to_admin(), roles_for(to()));
    SequenceSync s = sync_sequences(from(), to(), sequence_margin, dry_run);
    if (!s.ok) {
      failure = s.error;
      return false;
    }
    d["updated"] = static_cast<int64_t>(s.updates.size());
    json::array missing;
    for (const auto& m : s.missing) missing.emplace_back(m);
    d["missing"] = missing;
    d["summary"] =
        std::to_string(s.updates.size()) + " sequence(s) " + (dry_run ? "would be " : "") +
        "set on " + to_name() + " (margin " + std::to_string(sequence_margin) + ")" +
        (s.missing.empty() ? "" : ", " + std::to_string(s.missing.size()) + " missing there");
    return true;
  }

  // Steps 6 and 9 when the side being left cannot subscribe: nothing to do but say why.
  bool without_reverse(json::object& d) {
    if (reverse_possible) return false;
    d["reverse"] = false;
    d["summary"] = "no reverse replication (" + reverse_why_not + ")";
    return true;
  }

  bool replication(json::object& d) {
    // The destination's capture starts here: the side being left is fenced and caught up.
    if (way_back) return take(method->arm_way_back(sides(), limits()), d);
    if (without_reverse(d)) return true;
    swapped = true;  // before the calls: a half-done swap is undone as a whole
    auto cur = current_link(), next = next_link();
    // The old direction applies nothing more (a write that reached the side being left past
    // its fence must not come back through the new slot), and the new slot keeps every write
    // made on the destination from its first one. The subscription waits for step 9.
    auto t0 = Clock::now();
    if (!set_link_enabled(subscriber_of(cur), cur, false, failure)) return false;
    auto t1 = Clock::now();
    if (!prepare_link(publisher_of(next), next, publisher_of(cur), cur, failure)) return false;
    d["reverse"] = true;
    d["disable_ms"] = ms_between(t0, t1);
    d["slot_ms"] = ms_between(t1, Clock::now());
    d["summary"] = cur.subscription + " disabled, slot " + next.slot + " created on " + to_name() +
                   " (subscribed after the flip)";
    return true;
  }

  // Outside the pause: the old direction goes, the side left behind subscribes to the slot
  // step 6 made (copy_data = false: the slot holds every write since).
  bool subscribe(json::object& d) {
    if (way_back) {
      d["way_back"] = method_name();
      d["summary"] = "the way back: " + to_name() +
                     "'s writes are captured there; `pgcutoverctl "
                     "replicate apply" +
                     (dir == Direction::kForward ? " --reverse" : "") + "` carries them to " +
                     from_name();
      return true;
    }
    if (without_reverse(d)) return true;
    auto cur = current_link(), next = next_link();
    auto t0 = Clock::now();
    if (!drop_link(subscriber_of(cur), publisher_of(cur), cur, failure)) return false;
    auto t1 = Clock::now();
    if (!create_link(publisher_of(next), subscriber_of(next), publisher_conninfo_for(next), next,
                     publisher_of(cur), cur, failure))
      return false;
    d["reverse"] = true;
    d["drop_ms"] = ms_between(t0, t1);
    d["subscribe_ms"] = ms_between(t1, Clock::now());
    d["summary"] = "dropped " + cur.subscription + ", created " + next.subscription + " (" +
                   to_name() + " -> " + from_name() + ", copy_data = false)";
    return true;
  }

  // Flip every proxy; a proxy whose flip failed is asked again (its epoch re-read) before
  // the run gives up, since the others already serve on the destination.
  bool flip(json::object& d) {
    flip_started = true;
    // The epochs the pause answered with, one round trip fewer inside the pause (a stale one is
    // refused by its proxy and re-read below); a run that did not pause (recover) asks.
    auto st = paused_answers.size() == fleet.size() ? paused_answers : fleet.status();
    std::vector<uint64_t> ep;
    uint64_t next_epoch = 0;
    for (const auto& a : st) {
      ep.push_back(a.epoch);
      // A proxy already there (recover finishing a flip) keeps its epoch; the others move to
      // the next one. Both land on the same number.
      next_epoch = std::max(next_epoch, a.backend == to_name() ? a.epoch : a.epoch + 1);
    }
    // Before any gate opens on the destination, the databases say where the fleet is going: a
    // proxy that starts from now on reads it before its first client.
    if (std::string p = fleet.record_authority(to_name(), next_epoch); !p.empty())
      notes.emplace_back("fleet authority not recorded (" + p +
                         "): a proxy starting now follows its state file");
    authority_recorded = true;
    auto a = fleet.flip(to_name(), ep);
    for (int attempt = 0; attempt < 3 && !all_ok(a); ++attempt) {
      std::this_thread::sleep_for(milliseconds(100));
      auto again = fleet.status();
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].ok) continue;
        if (!again[i].ok) continue;  // still unreachable: no epoch to send it
        if (again[i].backend == to_name()) {
          a[i] = again[i];
          continue;
        }
        auto r = fleet.call(
            {i}, "POST", "/v1/flip",
            {json::serialize(json::object{{"backend", to_name()}, {"epoch", again[i].epoch}})},
            milliseconds(5000));
        a[i] = r[0];
      }
    }
    for (const auto& x : a) figures.reopened(x);
    d["proxies"] = to_json(a);
    if (!all_ok(a)) {
      failure = "flip: " + describe_failures(a);
      return false;
    }
    if (!smoke(d)) return false;
    d["summary"] = std::to_string(a.size()) + " proxies on " + to_name() + ", epoch " +
                   std::to_string(a.empty() ? 0 : a[0].epoch) +
                   (smoke_url.empty() ? "" : ", smoke test ok");
    return true;
  }

  // Through a proxy: a read that proves the destination answers, and a write in a
  // transaction that is rolled back.
  bool smoke(json::object& d) {
    if (smoke_url.empty()) {
      d["smoke"] = "skipped: no --smoke-url / PGCUTOVER_SMOKE_URL";
      return true;
    }
    failure = smoke_test(smoke_url, to(), to_name());
    if (!failure.empty()) return false;
    d["smoke"] = "ok";
    return true;
  }

  bool resume(json::object& d) {
    auto a = fleet.resume();
    for (const auto& x : a)
      if (x.changed) figures.reopened(x);
    d["proxies"] = to_json(a);
    paused = false;
    if (!all_ok(a)) {
      failure = "resume: " + describe_failures(a);
      return false;
    }
    d["summary"] = std::to_string(a.size()) + " proxies running";
    return true;
  }

  // ---- rollback: undo exactly what was done, newest first; every action idempotent ----
  json::array rollback() {
    json::array done;
    auto note = [&](const std::string& s) {
      done.emplace_back(s);
      say("  rollback: " + s);
    };
    auto st = fleet.status();
    std::vector<size_t> on_to;
    for (size_t i = 0; i < st.size(); ++i)
      if (st[i].ok && st[i].backend == to_name()) on_to.push_back(i);
    if (!on_to.empty()) {
      // Those proxies served on the destination: hold them while their writes travel back.
      std::string body = json::serialize(
          json::object{{"drain_timeout_ms", drain_timeout_ms}, {"max_pause_ms", max_pause_ms}});
      fleet.call(on_to, "POST", "/v1/pause", std::vector<std::string>(on_to.size(), body),
                 milliseconds(drain_timeout_ms + 5000));
      note("paused " + std::to_string(on_to.size()) + " proxy(ies) already on " + to_name());
    }
    std::string err;
    if (swapped) {
      auto cur = current_link(), next = next_link();
      if (flip_started && !link_exists(subscriber_of(next), next) &&
          slot_exists(publisher_of(next), next.slot)) {
        // Proxies may have written to the destination: those writes are in the new slot only.
        // Finish the swap so they travel back before it is undone.
        if (drop_link(subscriber_of(cur), publisher_of(cur), cur, err) &&
            create_link(publisher_of(next), subscriber_of(next), publisher_conninfo_for(next), next,
                        publisher_of(cur), cur, err))
          note("subscribed " + from_name() + " to " + next.slot + " to bring " + to_name() +
               "'s writes back");
        else
          note("WARNING: could not subscribe to " + next.slot + " (" + err + "); writes on " +
               to_name() + " may be missing on " + from_name());
      }
      if (link_exists(subscriber_of(next), next)) {
        // Writes made on the destination since the flip come back before the swap back.
        fence(to_admin(), roles_for(to()), own_pids(to_admin(), to()));
        std::string lsn;
        if (!wait_slot_passes(publisher_of(next), next.slot, milliseconds(catch_up_timeout_ms), lsn,
                              err))
          note("WARNING: reverse catch-up failed (" + err + "); writes on " + to_name() +
               " may be missing on " + from_name());
        sync_sequences(to(), from(), sequence_margin, false);
      }
      if (!drop_link(subscriber_of(next), publisher_of(next), next, err))
        note("could not drop " + next.subscription + ": " + err);
      if (!create_link(publisher_of(cur), subscriber_of(cur), publisher_conninfo_for(cur), cur,
                       publisher_of(next), next, err) ||
          !set_link_enabled(subscriber_of(cur), cur, true, err))  // disabled by step 6
        note("could not re-create " + cur.subscription + ": " + err);
      else
        note("replication " + from_name() + " -> " + to_name() + " restored (" + cur.subscription +
             ")");
      unfence(to_admin(), roles_for(to()));
    }
    if (fenced || !fenced_roles.empty()) {
      auto roles = fenced_roles.empty() ? roles_for(from()) : fenced_roles;
      FenceResult u = unfence(from_admin(), roles);
      fence_left = !u.ok;
      note(u.ok ? "fence removed on " + from_name()
                : "could not remove the fence on " + from_name() + " (" + u.error +
                      "): run `pgcutoverctl recover` once it answers");
    }
    if (!on_to.empty()) {
      auto again = fleet.status();
      std::vector<std::string> bodies;
      for (size_t i : on_to)
        bodies.push_back(
            json::serialize(json::object{{"backend", from_name()}, {"epoch", again[i].epoch}}));
      auto r = fleet.call(on_to, "POST", "/v1/flip", bodies, milliseconds(10000));
      note(all_ok(r) ? "flipped back to " + from_name()
                     : "flip back failed: " + describe_failures(r));
    }
    if (authority_recorded) {
      uint64_t epoch = 0;
      for (const auto& a : fleet.status())
        if (a.ok) epoch = std::max(epoch, a.epoch);
      std::string p = fleet.record_authority(from_name(), epoch);
      note(p.empty() ? "fleet authority back on " + from_name()
                     : "could not record the fleet authority: " + p);
    }
    auto r = fleet.resume();
    note(all_ok(r) ? "all proxies resumed on " + from_name() : "resume: " + describe_failures(r));
    return done;
  }

  // `open_run`: the journal's run stays unfinished, for `recover` to complete.
  int finish_report(bool ok, const std::string& outcome, json::array rolled_back = {},
                    bool open_run = false) {
    if (!dry_run && !open_run) {
      log({{"event", "end"}, {"outcome", outcome}});
      if (std::string p = fleet.record_run_end(run_id, outcome); !p.empty())
        notes.emplace_back("the run's end is not recorded in the fleet's databases (" + p + ")");
    }
    json::object rep{{"ok", ok},
                     {"command", dir == Direction::kForward ? "flip" : "revert"},
                     {"outcome", outcome},
                     {"dry_run", dry_run},
                     {"method", method_name()},
                     {"from", from_name()},
                     {"to", to_name()},
                     {"steps", steps},
                     {"notes", notes},
                     {"journal", journal.path()}};
    if (!failure.empty()) rep["error"] = failure;
    if (!rolled_back.empty()) rep["rolled_back"] = rolled_back;
    if (std::string line = figures.report(rep); !line.empty()) say(line);
    if (ctx.json)
      ctx.print_json(rep);
    else
      say(outcome + (failure.empty() ? "" : ": " + failure));
    return ok ? kExitOk : kExitCheckFailed;
  }
};

bool load_common(Cutover& c) {
  auto& ctx = c.ctx;
  c.dry_run = ctx.args.has("dry-run");
  c.drain_timeout_ms = opt_long(ctx, "drain-timeout", 5) * 1000;
  c.max_pause_ms = opt_long(ctx, "max-pause", 30) * 1000;
  c.catch_up_timeout_ms = opt_long(ctx, "catch-up-timeout", 10) * 1000;
  c.max_lag_bytes = opt_long(ctx, "max-lag-bytes", c.max_lag_bytes);
  c.max_lag_s = ctx.args.has("max-lag") ? std::stod(ctx.args.get("max-lag")) : 5;
  c.max_validation_age_s = opt_long(ctx, "max-validation-age", 86400);
  c.sequence_margin = opt_long(ctx, "sequence-margin", 1000);
  c.smoke_url = ctx.args.get("smoke-url");
  if (c.smoke_url.empty())
    if (const char* s = std::getenv("PGCUTOVER_SMOKE_URL")) c.smoke_url = s;
  if (!c.connect_all()) return false;
  // The fleet: proxies that take their commands through the databases (docs/fleet.md).
  c.fleet.join_fleet(ctx.settings, ctx.connect_timeout, c.fleet_problems);
  return true;
}

// Step 9, then the report. Traffic already runs on the destination; a failed subscription
// leaves the run open in the journal so that `recover` makes it (the slot keeps the writes).
int finish_subscribe(Cutover& c, bool ok, const std::string& outcome) {
  if (c.step(FlipStep::kSubscribe, [&](json::object& d) { return c.subscribe(d); }))
    return c.finish_report(ok, outcome);
  c.failure += " (traffic runs on " + c.to_name() + "; its writes wait in slot " +
               c.next_link().slot + ": run `pgcutoverctl recover` to subscribe " + c.from_name() +
               " to it)";
  return c.finish_report(false, "completed_with_errors", {}, /*open_run=*/true);
}

std::string new_run_id() {
  return std::to_string(std::time(nullptr)) + "-" + std::to_string(::getpid());
}

}  // namespace

int run_cutover(CommandContext& ctx, Direction direction) {
  if (direction == Direction::kForward && ctx.args.has("to") && ctx.args.get("to") != "target")
    return ctx.fail(kExitUsage,
                    "flip moves traffic to the backend named target; use `revert` to go back");
  Cutover c(ctx, direction);
  if (!load_common(c)) return kExitUsage;

  std::string jerr;
  auto records = c.journal.read(jerr);
  if (!jerr.empty()) return ctx.fail(kExitUsage, jerr);
  JournalSummary js = summarize(records);
  if (decide_recovery(js) != RecoveryAction::kNothing)
    return ctx.fail(kExitCheckFailed, "the journal " + c.journal.path() + " shows run " +
                                          js.run_id +
                                          " unfinished: run `pgcutoverctl recover` first");

  if (direction == Direction::kForward) {
    std::string name = ctx.args.get("method");
    if (name.empty()) name = recorded_method(*c.target);
    if (name.empty())
      return ctx.fail(kExitCheckFailed, "no replication method recorded (`replicate start`)");
    c.method = find_method(name);
    if (!c.method)
      return ctx.fail(kExitCheckFailed, "the recorded replication method '" + name +
                                            "' is not one this version knows (" + method_choices() +
                                            ")");
  } else {
    // The way back is the reverse logical link the forward flip built, when it could, or the
    // capture the forward method keeps on the target (trigger).
    bool linked = link_exists(*c.source_admin, reverse_link());
    const ReplicationMethod* forward = find_method(recorded_method(*c.target));
    bool captured = !linked && forward && forward->way_back_installed(*c.target);
    c.method = linked ? &logical_method() : captured ? forward : &lossy_revert_method();
    if (!linked && !captured && !ctx.args.has("accept-data-loss"))
      return ctx.fail(
          kExitCheckFailed,
          "no reverse replication (neither subscription pgcutover_reverse on the source nor a "
          "way-back capture on the target): writes made on the target since the flip would be "
          "lost; pass --accept-data-loss to revert anyway");
  }

  c.run_id = new_run_id();
  c.say(std::string(c.dry_run ? "rehearsing " : "") +
        (direction == Direction::kForward ? "flip" : "revert") + " " + c.from_name() + " -> " +
        c.to_name() + " (method " + c.method_name() + ", journal " + c.journal.path() + ")");
  json::array roles;
  for (const auto& r : c.roles_for(c.from())) roles.emplace_back(r);
  if (!c.dry_run &&
      !c.log({{"event", "begin"},
              {"direction", direction_name(direction)},
              {"data", json::object{{"method", c.method_name()}, {"fence_roles", roles}}}}))
    return ctx.fail(kExitUsage, c.failure);

  if (!c.step(FlipStep::kPreconditions, [&](json::object& d) { return c.preconditions(d); }))
    return c.finish_report(false, "aborted");
  if (c.dry_run) {
    c.step(FlipStep::kSequences, [&](json::object& d) { return c.sequences(d); });
    c.say("  dry run: would pause " + std::to_string(c.fleet.size()) + " proxies, fence role(s) " +
          json::serialize(roles) + " on " + c.from_name() + ", wait for the " + c.method_name() +
          " barrier, " + (c.reverse_possible ? "create reverse replication, " : "") +
          "flip and resume");
    return c.finish_report(true, "rehearsed");
  }
  // The reverse-replication decision travels in the journal so `recover` knows it; the fleet's
  // databases get the run too, for a `recover` run from another machine.
  c.log({{"event", "plan"}, {"data", json::object{{"reverse", c.reverse_possible}}}});
  if (std::string p =
          c.fleet.record_run_begin(c.run_id, direction_name(direction),
                                   json::serialize(json::object{{"method", c.method_name()},
                                                                {"fence_roles", roles},
                                                                {"reverse", c.reverse_possible}}));
      !p.empty())
    c.notes.emplace_back("the run is not recorded in the fleet's databases (" + p +
                         "): only this machine's journal can recover it");

  bool ok = c.step(FlipStep::kPause, [&](json::object& d) { return c.pause(d); }) &&
            c.step(FlipStep::kFence, [&](json::object& d) { return c.fence_step(d); }) &&
            c.step(FlipStep::kCatchUp, [&](json::object& d) { return c.catch_up(d); }) &&
            c.step(FlipStep::kSequences, [&](json::object& d) { return c.sequences(d); }) &&
            c.step(FlipStep::kReplication, [&](json::object& d) { return c.replication(d); }) &&
            c.step(FlipStep::kFlip, [&](json::object& d) { return c.flip(d); });
  if (!ok) {
    json::array undo = c.rollback();
    if (c.fence_left)
      c.failure += "; the fence on " + c.from_name() +
                   " may still be in place: run `pgcutoverctl recover` once it answers";
    return c.finish_report(false, "rolled_back", undo, /*open_run=*/c.fence_left);
  }
  // From here traffic runs on the destination: a failure to resume is reported, not undone.
  bool resumed = c.step(FlipStep::kResume, [&](json::object& d) { return c.resume(d); });
  return finish_subscribe(c, resumed, resumed ? "completed" : "completed_with_errors");
}

int run_recover(CommandContext& ctx) {
  Cutover probe(ctx, Direction::kForward);
  std::string jerr;
  auto records = probe.journal.read(jerr);
  if (!jerr.empty()) return ctx.fail(kExitUsage, jerr);
  // The databases say whether another controller ended this run, or left one unfinished that
  // this machine's journal never saw.
  Cutover c(ctx, Direction::kForward);
  if (!load_common(c)) return kExitUsage;
  RecoveryChoice choice = choose_recovery(journal_source(records, probe.journal.path()),
                                          c.fleet.last_run(), c.fleet.authority());
  if (!choice.marked.empty()) {
    c.run_id = choice.marked_run;
    c.log({{"event", "end"}, {"outcome", choice.marked_outcome}});
    ctx.say(choice.marked);
  }
  const std::string& marked = choice.marked;
  RecoverySource& src = choice.source;
  RecoveryAction act = decide_recovery(src.js);
  if (act == RecoveryAction::kNothing) {
    if (ctx.json) {
      json::object rep{{"ok", true}, {"action", "nothing"}};
      if (!marked.empty()) rep["marked_ended"] = marked;
      ctx.print_json(rep);
    } else {
      ctx.say("nothing to recover: the journal's last run " +
              (src.js.have_run ? src.js.run_id + " ended" : std::string("does not exist")) +
              (c.fleet.has_channel() ? ", and the fleet's databases hold no unfinished run" : ""));
    }
    return kExitOk;
  }
  const JournalSummary& js = src.js;
  c.dir = js.direction;
  c.run_id = js.run_id;
  if (auto it = src.begin.find("method"); it != src.begin.end() && it->value().is_string()) {
    std::string_view name = it->value().as_string();
    c.method = name == lossy_revert_method().name() ? &lossy_revert_method() : find_method(name);
  }
  if (auto it = src.begin.find("fence_roles"); it != src.begin.end() && it->value().is_array())
    for (const auto& r : it->value().as_array())
      if (r.is_string()) c.fenced_roles.emplace_back(r.as_string());
  c.reverse_possible = src.reverse.value_or(false);
  auto started = [&](FlipStep s) { return js.last_started && *js.last_started >= s; };
  c.paused = started(FlipStep::kPause);
  c.fenced = started(FlipStep::kFence);
  c.swapped = started(FlipStep::kReplication) && c.reverse_possible;
  std::string what = std::string("recovering run ") + js.run_id + " (" +
                     direction_name(js.direction) + ") from " + src.where + ", stopped after " +
                     (js.last_done ? step_name(*js.last_done) : "nothing") + ": " +
                     recovery_action_name(act);
  c.say(what);
  c.notes.emplace_back(what);
  c.log({{"event", "recover"}, {"action", recovery_action_name(act)}});
  if (act == RecoveryAction::kRollBack) {
    json::array undo = c.rollback();
    if (c.fence_left)
      c.failure = "the fence on " + c.from_name() + " could not be removed: run `recover` again";
    return c.finish_report(!c.fence_left, "rolled_back", undo, /*open_run=*/c.fence_left);
  }
  // Finish: the destination has everything (catch-up and the swap are done); flip whatever
  // proxy is not there yet, then resume all.
  bool ok = c.step(FlipStep::kFlip, [&](json::object& d) { return c.flip(d); }) &&
            c.step(FlipStep::kResume, [&](json::object& d) { return c.resume(d); });
  if (!ok) return c.finish_report(false, "recover_failed");
  return finish_subscribe(c, true, "completed");
}

}  // namespace pgcutover::control
