// The trigger method as the commands see it: the change log's backlog is the lag, draining it
// with the source fenced is the barrier, and finalize removes the capture.
#include "control/replication/method.h"
#include "control/replication/trigger.h"

namespace pgcutover::control {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class TriggerMethod final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "trigger"; }
  // The log is keyed by primary key; installing triggers needs ownership, nothing more.
  MethodNeeds needs() const override { return {.primary_keys = true, .table_ownership = true}; }
  int start(CommandContext& ctx) const override { return trigger_start(ctx); }
  int status(CommandContext& ctx) const override { return trigger_status(ctx); }
  int stop(CommandContext& ctx) const override { return trigger_stop(ctx); }

  ReplicationLag lag(PgConn& source, PgConn&, milliseconds) const override {
    // The log's size and the age of its oldest entry: what a final drain would have to do.
    ReplicationLag lag;
    lag.method = "trigger";
    TriggerBacklog b = trigger_backlog(source);
    lag.ok = b.ok;
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
    TriggerBacklog b = trigger_backlog(s.from);
    if (!b.ok || !b.broken.empty()) {
      out.ok = false;
      out.failure = "trigger capture: " + (b.ok ? b.broken : b.error);
      return out;
    }
    out.data["pending_changes"] = b.pending;
    out.data["lag_seconds"] = b.oldest_seconds;
    if (b.oldest_seconds > limits.max_lag_seconds) {
      out.ok = false;
      out.failure = "the trigger change log's oldest entry is " + format_seconds(b.oldest_seconds) +
                    " old (--max-lag " + format_seconds(limits.max_lag_seconds) +
                    "): is `replicate apply` running?";
    }
    return out;
  }

  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits& limits) const override {
    // Fenced, so no new entries: a log drained to empty means the destination has every
    // write. This drain is the barrier, and its duration is part of the write pause.
    FlipStepResult out;
    int64_t applied = 0;
    auto t0 = Clock::now();
    if (!trigger_drain(s.from, s.to, limits.catch_up_timeout, applied, out.failure)) {
      out.ok = false;
      return out;
    }
    auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    out.data["applied"] = applied;
    out.data["summary"] = "change log drained: " + std::to_string(applied) +
                          " change(s) applied in " + std::to_string(ms) + " ms";
    return out;
  }

  void clean_up(PgConn& source, PgConn& target, PgConn&, PgConn&, std::vector<std::string>& done,
                std::vector<std::string>& problems) const override {
    // As the source's owner (the app role), who installed them: no superuser needed.
    if (remove_trigger_capture(source, &target, problems))
      done.push_back(
          "trigger capture: no trigger, function, log or pgcutover schema left on the source");
  }
};

}  // namespace

const ReplicationMethod& trigger_method() {
  static const TriggerMethod m;
  return m;
}

}  // namespace pgcutover::control
