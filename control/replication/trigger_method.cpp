// The trigger method as the commands see it: the change log's backlog is the lag, draining it
// with the source fenced is the barrier, and finalize removes the capture.
#include "control/replication/method.h"
#include "control/replication/trigger.h"
#include "control/replication/trigger_capture.h"

namespace pgcutover::control {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Both sides' captured tables, read before the pause, and whether the flip's two sessions are
// already the method's: the calls inside the pause then go straight to the logs.
struct TriggerFlipMemo : FlipMemo {
  std::optional<std::vector<CapturedTable>> from_tables, to_tables;
  bool sessions_prepared = false;
};

TriggerFlipMemo* memo_of(const FlipSides& s) {
  if (s.memo == nullptr) return nullptr;
  if (!*s.memo) *s.memo = std::make_shared<TriggerFlipMemo>();
  return dynamic_cast<TriggerFlipMemo*>(s.memo->get());
}

DrainStart drain_start(const TriggerFlipMemo* m, bool from_side) {
  if (m == nullptr) return {};
  const auto& t = from_side ? m->from_tables : m->to_tables;
  return {t ? &*t : nullptr, m->sessions_prepared};
}

// A drain of the side being left, handed what was read before the pause.
// Its parts' times go into `data` (the step's JSON).
bool drain(const FlipSides& s, const FlipLimits& limits, int64_t& applied, std::string& error,
           boost::json::object& data) {
  TriggerFlipMemo* m = memo_of(s);
  DrainTimes t;
  bool ok = trigger_drain(s.from, s.to, limits.catch_up_timeout, applied, error,
                          {s.from_name, s.to_name}, drain_start(m, true), &t);
  if (ok && m != nullptr) m->sessions_prepared = true;
  data["prepare_ms"] = t.prepare_ms;
  data["lock_ms"] = t.lock_ms;
  data["rounds"] = t.rounds;
  data["rounds_ms"] = t.rounds_ms;
  data["check_ms"] = t.check_ms;
  return ok;
}

class TriggerMethod final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "trigger"; }
  // The log is keyed by primary key; installing triggers needs ownership, nothing more.
  MethodNeeds needs() const override { return {.primary_keys = true, .table_ownership = true}; }
  WayBackKinds way_back_kinds() const override { return {.target_capture = true}; }
  int start(CommandContext& ctx) const override { return trigger_start(ctx); }
  int status(CommandContext& ctx) const override { return trigger_status(ctx); }
  int stop(CommandContext& ctx) const override { return trigger_stop(ctx); }

  ReplicationLag lag(PgConn& source, PgConn&, milliseconds) const override {
    return backlog_lag(source, "source");
  }

  ReplicationLag way_back_lag(PgConn&, PgConn& target) const override {
    ReplicationLag l = backlog_lag(target, "target");
    l.direction = "reverse";
    return l;
  }

  // The log's size and the age of its oldest entry: what a final drain would have to do.
  static ReplicationLag backlog_lag(PgConn& side, const std::string& side_name) {
    ReplicationLag lag;
    lag.method = "trigger";
    TriggerBacklog b = trigger_backlog(side, side_name);
    // A capture that missed something (TRUNCATE, DDL) is not replicating: the reading fails,
    // loudly, rather than reporting a lag that the missing change makes meaningless.
    lag.ok = b.ok && b.broken.empty();
    lag.error = b.ok ? b.broken : b.error;
    if (b.ok) {
      lag.pending_changes = b.pending;
      lag.seconds = b.oldest_seconds;
      lag.seconds_from = "oldest_pending_change";
    }
    return lag;
  }

  FlipStepResult flip_ready(const FlipSides& s, const FlipLimits& limits) const override {
    // The final drain runs inside the write pause: refuse when the backlog is old enough
    // to make that pause long (a running `replicate apply` keeps it short).
    FlipStepResult out;
    TriggerBacklog b = trigger_backlog(s.from, s.from_name);
    if (!b.ok || !b.broken.empty()) {
      out.ok = false;
      out.failure = "trigger capture: " + (b.ok ? b.broken : b.error);
      return out;
    }
    out.data["pending_changes"] = b.pending;
    out.data["lag_seconds"] = b.oldest_seconds;
    if (TriggerFlipMemo* m = memo_of(s)) {
      std::string ignored;  // the drain reads them again when this fails
      m->from_tables = load_captured(s.from, ignored, s.from_name);
    }
    if (b.oldest_seconds > limits.max_lag_seconds) {
      out.ok = false;
      out.failure = "the trigger change log's oldest entry is " + format_seconds(b.oldest_seconds) +
                    " old (--max-lag " + format_seconds(limits.max_lag_seconds) +
                    "): is `replicate apply" + (s.from_name == "source" ? "" : " --reverse") +
                    "` running?";
    }
    return out;
  }

  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits& limits) const override {
    // Fenced, so no new entries: a log drained to empty means the destination has every
    // write. This drain is the barrier, and its duration is part of the write pause.
    FlipStepResult out;
    int64_t applied = 0;
    auto t0 = Clock::now();
    if (!drain(s, limits, applied, out.failure, out.data)) {
      out.ok = false;
      return out;
    }
    auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    out.data["applied"] = applied;
    out.data["summary"] = "change log drained: " + std::to_string(applied) +
                          " change(s) applied in " + std::to_string(ms) + " ms";
    return out;
  }

  // What the log held at the pause, applied while the fence runs: the drain after it is then
  // left with the entries of the sessions the fence ended, usually none.
  FlipStepResult flip_head_start(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    int64_t applied = 0;
    out.ok = drain(s, limits, applied, out.failure, out.data);
    out.data["applied"] = applied;
    return out;
  }

  // The way back: the same capture on the destination. Installing it is idempotent, so a
  // revert (destination: the source, which still has the forward capture) runs the same call.
  bool prepare_way_back(const FlipSides& s, std::string& why_not) const override {
    if (!install_way_back_capture(s.to, s.to_name, why_not)) return false;
    if (TriggerFlipMemo* m = memo_of(s)) {
      std::string ignored;  // arming reads them again when this fails
      m->to_tables = load_captured(s.to, ignored, s.to_name);
    }
    return true;
  }

  FlipStepResult arm_way_back(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    out.ok = arm_trigger_capture(s.to, s.from, limits.catch_up_timeout, {s.to_name, s.from_name},
                                 out.failure, drain_start(memo_of(s), false));
    out.data["way_back"] = "trigger";
    out.data["summary"] = "trigger capture on the " + s.to_name +
                          " armed: every write there from "
                          "now on is kept for the way back (`replicate apply" +
                          (s.to_name == "target" ? " --reverse" : "") + "`)";
    return out;
  }

  bool way_back_installed(PgConn& side) const override { return has_trigger_capture(side); }

  void clean_up(PgConn& source, PgConn& target, PgConn&, PgConn&, std::vector<std::string>& done,
                std::vector<std::string>& problems) const override {
    // As each side's owner (the app role), who installed them: no superuser needed. The
    // target's is the way back's, and goes first: it takes the applied-rows table off the
    // source, so that the source's pgcutover schema is empty when its own removal drops it.
    bool tgt = remove_trigger_capture(target, &source, problems);
    bool src = remove_trigger_capture(source, &target, problems);
    if (src && tgt)
      done.push_back(
          "trigger capture: no trigger, function, log or pgcutover schema left on the source, "
          "no way-back capture left on the target");
  }
};

}  // namespace

const ReplicationMethod& trigger_method() {
  static const TriggerMethod m;
  return m;
}

}  // namespace pgcutover::control
