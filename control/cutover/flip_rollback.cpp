// The rollback of a cutover run that failed before traffic resumed on the destination.
#include "control/cutover/cutover_run.h"

#include "control/cutover/fence.h"
#include "control/cutover/sequences.h"

namespace pgcutover::control {

// ---- rollback: undo exactly what was done, newest first; every action idempotent ----
json::array Cutover::rollback() {
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
  if (way_back_armed) {
    std::vector<std::string> notes;
    method->undo_way_back(sides(), notes);
    for (const auto& n : notes) note(n);
  }
  if (fenced || !fenced_roles.empty()) {
    auto roles = fenced_roles.empty() ? roles_for(from()) : fenced_roles;
    FenceResult u = unfence(from_admin(), roles);
    fence_left = !u.ok;
    note(u.ok ? "fence removed on " + from_name()
              : "could not remove the fence on " + from_name() + " (" + u.error +
                    "): run `pgcutoverctl recover` once it answers");
  }
  // The epochs known from here on: the status read above (a pause does not move an epoch) and
  // what the flips back answer. Not read again: every fleet-wide read waits for the slowest
  // proxy, and a dead one costs each read a whole admin timeout.
  std::vector<uint64_t> epochs;
  for (const auto& a : st) epochs.push_back(a.ok ? a.epoch : 0);
  if (!on_to.empty()) {
    std::vector<std::string> bodies;
    for (size_t i : on_to)
      bodies.push_back(
          json::serialize(json::object{{"backend", from_name()}, {"epoch", st[i].epoch}}));
    auto r = fleet.call(on_to, "POST", "/v1/flip", bodies, milliseconds(10000));
    for (size_t k = 0; k < on_to.size() && k < r.size(); ++k)
      if (r[k].reachable && on_to[k] < epochs.size())
        epochs[on_to[k]] = std::max(epochs[on_to[k]], r[k].epoch);
    // The rollback's own pause is part of what the clients saw: the figures run to its end.
    for (const auto& x : r) figures.reopened(x);
    note(all_ok(r) ? "flipped back to " + from_name()
                   : "flip back failed: " + describe_failures(r));
  }
  if (authority_recorded) {
    uint64_t epoch = 0;
    for (uint64_t e : epochs) epoch = std::max(epoch, e);
    std::string p = fleet.record_authority(from_name(), epoch);
    note(p.empty() ? "fleet authority back on " + from_name()
                   : "could not record the fleet authority: " + p);
  }
  auto r = fleet.resume();
  for (const auto& x : r)
    if (x.changed) figures.reopened(x);
  note(all_ok(r) ? "all proxies resumed on " + from_name() : "resume: " + describe_failures(r));
  return done;
}

}  // namespace pgcutover::control
