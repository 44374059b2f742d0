// The steps of a cutover run, in order (flip_plan.h): preconditions outside the pause; pause,
// fence, catch-up, sequences, replication and flip while writes are held; resume; subscribe
// after traffic runs on the destination.
#include "control/cutover/cutover_run.h"

#include <thread>

#include "control/cutover/fence.h"
#include "control/cutover/sequences.h"
#include "control/cutover/smoke_test.h"
#include "control/db/control_state.h"
#include "control/replication/replicate.h"
#include "control/validate/validate.h"

namespace pgcutover::control {

// ---- the steps ----
bool Cutover::preconditions(json::object& d) {
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
    d["way_back"] =
        way_back ? std::string(method->way_back_method().name()) + " capture on the " + to_name()
                 : "none";
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

bool Cutover::pause(json::object& d) {
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
  proxies_quiet_pids.clear();
  for (const auto& x : a) {
    if (x.backend != from_name()) continue;
    if (auto* p = x.body.if_contains("quiet_server_pids"); p && p->is_array())
      for (const auto& v : p->as_array())
        if (v.is_int64()) proxies_quiet_pids.push_back(static_cast<int>(v.as_int64()));
  }
  d["summary"] = std::to_string(a.size()) + " proxies paused in " +
                 std::to_string(static_cast<int>(ms_between(t0, Clock::now()))) + " ms";
  return true;
}

bool Cutover::fence_step(json::object& d) {
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
  // Spared: the controller's own sessions and the paused proxies' pooled ones (quiet behind
  // their gates, and never used again once they flip). Ending those only spent the pause on
  // backend exits competing for the CPU with the catch-up.
  std::vector<int> spare = own_pids(from_admin(), from());
  spare.insert(spare.end(), proxies_quiet_pids.begin(), proxies_quiet_pids.end());
  FenceResult r = fence(from_admin(), roles, spare);
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
  d["proxy_sessions_spared"] = static_cast<int64_t>(proxies_quiet_pids.size());
  d["alter_ms"] = r.alter_ms;
  d["terminate_ms"] = r.terminate_ms;
  d["exit_wait_ms"] = r.exit_wait_ms;
  if (!r.ok) {
    failure = side_lost(r.error);
    return false;
  }
  if (to_fenced && !dry_run) {
    // Nothing writes to the side being left any more: the destination's fence can go now
    // (the sequences step lifts it otherwise).
    FenceResult u = unfence(to_admin(), roles_for(to()));
    to_unfenced = u.ok;
    if (u.ok) d["destination_unfenced"] = true;
  }
  d["summary"] = std::to_string(roles.size()) + " role(s) read-only on " + from_name() + ", " +
                 std::to_string(r.sessions_terminated) + " session(s) ended in " +
                 std::to_string(static_cast<int>(fence_ms)) + " ms; catch-up head start " +
                 std::to_string(static_cast<int>(head_ms)) + " ms";
  return true;
}

bool Cutover::catch_up(json::object& d) {
  if (take(method->flip_catch_up(sides(), limits()), d)) return true;
  failure = side_lost(failure);
  return false;
}

// A failure on the side being left whose connection broke: say that side stopped answering,
// which is what the operator has to act on, rather than the statement that noticed it.
std::string Cutover::side_lost(const std::string& error) {
  if (!from_admin().lost() && !from().lost()) return error;
  return "the " + from_name() + " (" + from().spec().display() +
         ") stopped answering during the pause (" + error + "): the " + to_name() +
         " cannot be proven caught up, so nothing was flipped";
}

bool Cutover::sequences(json::object& d) {
  // The destination may still carry a fence from an earlier revert, which the fence step lifts;
  // asked again only when that failed (each round trip here holds the writes).
  if (to_fenced && !to_unfenced && !dry_run) to_unfenced = unfence(to_admin(), roles_for(to())).ok;
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
bool Cutover::without_reverse(json::object& d) {
  if (reverse_possible) return false;
  d["reverse"] = false;
  d["summary"] = "no reverse replication (" + reverse_why_not + ")";
  return true;
}

bool Cutover::replication(json::object& d) {
  // The destination's capture starts here: the side being left is fenced and caught up.
  if (way_back) {
    way_back_armed = true;  // before the call: a half-done arm is undone as a whole
    return take(method->arm_way_back(sides(), limits()), d);
  }
  if (without_reverse(d)) return true;
  swapped = true;  // before the calls: a half-done swap is undone as a whole
  auto cur = current_link(), next = next_link();
  // The old direction applies nothing more (a write that reached the side being left past
  // its fence must not come back through the new slot), and the new slot keeps every write
  // made on the destination from its first one. The subscription waits for step 9.
  auto t0 = Clock::now();
  if (!set_link_enabled(subscriber_of(cur), cur, false, failure)) return false;
  auto t1 = Clock::now();
  // The publications were made in step 1: only the slot is left to make here.
  if (!create_slot(publisher_of(next), next, failure)) return false;
  d["reverse"] = true;
  d["disable_ms"] = ms_between(t0, t1);
  d["slot_ms"] = ms_between(t1, Clock::now());
  d["summary"] = cur.subscription + " disabled, slot " + next.slot + " created on " + to_name() +
                 " (subscribed after the flip)";
  return true;
}

// Outside the pause: the old direction goes, the side left behind subscribes to the slot
// step 6 made (copy_data = false: the slot holds every write since).
bool Cutover::subscribe(json::object& d) {
  if (way_back) {
    if (!take(method->way_back_opened(sides()), d)) return false;
    // A revert over the trigger capture of a logical run leaves the source's writes captured
    // for the target: the trigger method is the forward replication from now on.
    if (recorded_method(*target) != method_name()) {
      PgError pe;
      if (!record_method(*target, method_name(), {}, pe)) {
        failure = "recording the method " + method_name() + " on the target: " + pe.message;
        return false;
      }
      d["method_recorded"] = method_name();
    }
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
bool Cutover::flip(json::object& d) {
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
  auto t0 = Clock::now();
  if (std::string p = fleet.record_authority(to_name(), next_epoch); !p.empty())
    notes.emplace_back("fleet authority not recorded (" + p +
                       "): a proxy starting now follows its state file");
  authority_recorded = true;
  auto t1 = Clock::now();
  auto a = fleet.flip(to_name(), ep);
  // Where the flip step's time inside the pause goes (the smoke test runs after the gates opened).
  d["authority_ms"] = ms_between(t0, t1);
  d["proxies_ms"] = ms_between(t1, Clock::now());
  // A proxy that answers neither its flip nor the status read after it is not asked again:
  // each round would cost every paused proxy another admin timeout before the rollback.
  bool retriable = true;
  for (int attempt = 0; attempt < 3 && retriable && !all_ok(a); ++attempt) {
    std::this_thread::sleep_for(milliseconds(100));
    auto again = fleet.status();
    retriable = false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].ok) continue;
      if (!again[i].ok) continue;  // still unreachable: no epoch to send it
      retriable = true;
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
bool Cutover::smoke(json::object& d) {
  if (smoke_url.empty()) {
    d["smoke"] = "skipped: no --smoke-url / PGCUTOVER_SMOKE_URL";
    return true;
  }
  failure = smoke_test(smoke_url, to(), to_name());
  if (!failure.empty()) return false;
  d["smoke"] = "ok";
  return true;
}

bool Cutover::resume(json::object& d) {
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

}  // namespace pgcutover::control
