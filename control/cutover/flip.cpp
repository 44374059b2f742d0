// The cutover commands: flip, revert and recover run a Cutover (cutover_run.h) through its
// journaled, timed steps (flip_plan.h), with automatic rollback of any failure before traffic
// resumes, and recovery from the journal.
#include "control/cutover/flip.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include "control/command/exit_codes.h"
#include "control/cutover/cutover_run.h"
#include "control/cutover/recovery_source.h"
#include "control/db/control_state.h"

namespace pgcutover::control {

int Cutover::finish_report(bool ok, const std::string& outcome, json::array rolled_back,
                           bool open_run) {
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

namespace {

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
    // trigger capture the forward flip armed on the target (the trigger method's, whichever
    // method went forward).
    bool linked = link_exists(*c.source_admin, reverse_link());
    const ReplicationMethod* forward = find_method(recorded_method(*c.target));
    bool captured = !linked && forward && forward->way_back_installed(*c.target);
    c.method = linked     ? &logical_method()
               : captured ? &forward->way_back_method()
                          : &lossy_revert_method();
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
  c.fenced = started(FlipStep::kPause);  // the fence's start is not fsync'd (flip_plan.h)
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
