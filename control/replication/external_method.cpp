// The external method as the commands see it: another tool replicates; a heartbeat row written
// on the source and seen on the target is both the lag figure and the barrier.
#include "control/replication/external.h"
#include "control/replication/method.h"
#include "control/replication/replicate.h"

namespace pgcutover::control {
namespace {

using std::chrono::milliseconds;

class ExternalMethod final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "external"; }
  // Tools that read WAL (AWS DMS CDC) need what native logical replication needs.
  MethodNeeds needs() const override { return {.logical_decoding = true}; }
  int start(CommandContext& ctx) const override { return external_start(ctx); }
  int status(CommandContext& ctx) const override { return external_status(ctx); }
  int stop(CommandContext& ctx) const override { return external_stop(ctx); }

  ReplicationLag lag(PgConn& source, PgConn& target, milliseconds timeout) const override {
    ReplicationLag lag;
    lag.method = "external";
    HeartbeatTrip t = heartbeat_round_trip(source, target, timeout);
    lag.ok = t.arrived;
    lag.error = t.error;
    if (t.arrived) {
      lag.seconds = t.seconds;
      lag.seconds_from = "heartbeat";
    }
    return lag;
  }

  bool proves_catch_up() const override { return true; }
  bool wait_caught_up(PgConn& source, PgConn& target, milliseconds timeout) const override {
    return heartbeat_round_trip(source, target, timeout).arrived;
  }

  FlipStepResult flip_ready(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    HeartbeatTrip t = heartbeat_round_trip(
        s.from, s.to, milliseconds(static_cast<long>(limits.max_lag_seconds * 1000)));
    if (!t.arrived) {
      out.ok = false;
      out.failure = "external replication lag above --max-lag: " + t.error;
      return out;
    }
    out.data["lag_seconds"] = t.seconds;
    return out;
  }

  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits& limits) const override {
    // The heartbeat row written now, after the fence, is the barrier.
    FlipStepResult out;
    HeartbeatTrip t = heartbeat_round_trip(s.from, s.to, limits.catch_up_timeout);
    if (!t.arrived) {
      out.ok = false;
      out.failure = "barrier row did not arrive: " + t.error;
      return out;
    }
    out.data["barrier_seq"] = t.seq;
    out.data["summary"] = "barrier row " + std::to_string(t.seq) + " arrived";
    return out;
  }
};

}  // namespace

const ReplicationMethod& external_method() {
  static const ExternalMethod m;
  return m;
}

}  // namespace pgcutover::control
