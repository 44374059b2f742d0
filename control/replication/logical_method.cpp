// The logical method as the commands see it: publication and subscription (logical.cpp), lag
// from the slot, the barrier as a WAL position the slot must pass, and the only way back (a
// reverse subscription on the side being left).
#include <thread>

#include "control/replication/link.h"
#include "control/replication/method.h"
#include "control/replication/replicate.h"
#include "control/replication/trigger.h"

namespace pgcutover::control {
namespace {

using std::chrono::milliseconds;

// The lag of one link: its slot on the publisher against the publisher's WAL position, and the
// walsender's replay_lag (or the subscriber's last report) for seconds.
ReplicationLag slot_lag(PgConn& publisher, PgConn& subscriber, const LinkNames& link,
                        const char* direction) {
  ReplicationLag lag;
  lag.method = "logical";
  lag.direction = direction;
  const bool reverse = std::string_view(direction) == "reverse";
  const char* publisher_name = reverse ? "target" : "source";
  PgResult r = publisher.exec(
      "SELECT pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text, s.active, "
      "pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, "
      "(SELECT extract(epoch FROM r.replay_lag) FROM pg_stat_replication r "
      " WHERE r.application_name = $2 ORDER BY r.replay_lag DESC NULLS LAST LIMIT 1) "
      "FROM pg_replication_slots s WHERE s.slot_name = $1",
      {link.slot, link.subscription});
  if (!r) {
    lag.error = std::string("reading the slot on the ") + publisher_name + ": " + r.error().message;
    return lag;
  }
  if (r.rows() == 0) {
    lag.error = "no replication slot '" + link.slot + "' on the " + publisher_name +
                ": logical replication is not running (replicate start --method logical)";
    return lag;
  }
  lag.source_lsn = r.get(0, 0);
  lag.confirmed_flush_lsn = r.get(0, 1);
  lag.slot_active = r.get_bool(0, 2);
  lag.bytes = r.get_int(0, 3);
  lag.ok = true;
  if (!r.is_null(0, 4)) {
    lag.seconds = r.get_double(0, 4);
    lag.seconds_from = "replay_lag";
  } else if (*lag.bytes <= 0 || (lag.slot_active && *lag.bytes < 16 * 1024)) {
    // replay_lag is NULL once the walsender has been idle a while: nothing is in flight.
    lag.seconds = 0;
    lag.seconds_from = "caught_up";
  } else {
    // Behind and no replay_lag: the age of the apply worker's last report bounds it.
    auto v = subscriber.value(
        "SELECT extract(epoch FROM now() - latest_end_time) FROM pg_stat_subscription "
        "WHERE subname = $1 AND relid IS NULL",
        {link.subscription});
    if (v) {
      lag.seconds = std::stod(*v);
      lag.seconds_from = "latest_end_time";
    }
  }
  if (!lag.slot_active) {
    lag.error = std::string("the slot is not active: no subscriber is connected (check the ") +
                (reverse ? "source" : "target") + "'s log and `replicate status`)";
  }
  return lag;
}

class LogicalMethod final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "logical"; }
  MethodNeeds needs() const override {
    return {.logical_decoding = true, .target_subscription = true};
  }
  WayBackKinds way_back_kinds() const override {
    return {.reverse_subscription = true, .target_capture = true};
  }
  int start(CommandContext& ctx) const override { return logical_start(ctx); }
  int status(CommandContext& ctx) const override { return logical_status(ctx); }
  int stop(CommandContext& ctx) const override { return logical_stop(ctx); }

  // Before the flip the forward link (slot on the source); after it, when the source could
  // subscribe, the reverse one (slot on the target): the replication a revert depends on.
  ReplicationLag lag(PgConn& source, PgConn& target, milliseconds) const override {
    LinkNames back = reverse_link();
    if (!slot_exists(source, forward_link().slot)) {
      if (slot_exists(target, back.slot)) return slot_lag(target, source, back, "reverse");
      // After a flip whose way back is the trigger capture on the target.
      if (has_trigger_capture(target)) return trigger_method().way_back_lag(source, target);
    }
    return slot_lag(source, target, forward_link(), "forward");
  }

  bool proves_catch_up() const override { return true; }
  bool wait_caught_up(PgConn& source, PgConn&, milliseconds timeout) const override {
    std::string lsn, error;
    return wait_slot_passes(source, kSlot, timeout, lsn, error);
  }

  FlipStepResult flip_ready(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    // A subscription created moments ago (by a revert or a rollback) creates or reconnects
    // to its slot within a second or two: give it a bounded 10 s, while the slot is missing
    // or inactive, before calling replication not running.
    for (int i = 0; i < 200; ++i) {
      auto act = s.from_admin.value(
          "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", {s.slot});
      if (act && *act == "true") break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    PgResult r = s.from_admin.exec(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, active "
        "FROM pg_replication_slots WHERE slot_name = $1",
        {s.slot});
    if (!r || r.rows() == 0)
      return fail("no replication slot " + s.slot + " on the " + s.from_name +
                  ": replication is not running (`replicate status`)");
    int64_t lag = r.get_int(0, 0);
    out.data["lag_bytes"] = lag;
    if (!r.get_bool(0, 1))
      return fail("slot " + s.slot + " is not active: no subscriber is connected", out.data);
    if (lag > limits.max_lag_bytes)
      return fail("replication is " + format_bytes(static_cast<double>(lag)) +
                      " behind (--max-lag-bytes " + std::to_string(limits.max_lag_bytes) + ")",
                  out.data);
    return out;
  }

  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    std::string lsn;
    out.ok = wait_slot_passes(s.from_admin, s.slot, limits.catch_up_timeout, lsn, out.failure);
    out.data["barrier_lsn"] = lsn;
    out.data["summary"] = "slot " + s.slot + " confirmed " + lsn;
    return out;
  }

  // The slot passing the position the source had at the pause, read on the app session: the
  // slot view and the position are open to every role, and the admin session is the fence's.
  FlipStepResult flip_head_start(const FlipSides& s, const FlipLimits& limits) const override {
    FlipStepResult out;
    std::string lsn;
    out.ok = wait_slot_passes(s.from, s.slot, limits.catch_up_timeout, lsn, out.failure);
    out.data["lsn"] = lsn;
    return out;
  }

  bool can_reverse(PgConn& from_admin, const std::string& from_name,
                   std::string& why_not) const override {
    auto su = from_admin.value("SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user");
    if (su && *su == "true") return true;
    why_not = "the " + from_name +
              "'s role cannot CREATE SUBSCRIPTION (superuser needed on PostgreSQL 15; Heroku "
              "never allows it)";
    return false;
  }

  // A source that cannot subscribe (Heroku) gets its way back from the trigger method instead:
  // a capture on the target, installed before the pause and armed inside it, with the forward
  // subscription disabled first, so that what `replicate apply --reverse` writes to the
  // source never comes back. Forward flips only: a revert goes back to where replication
  // started.
  bool prepare_way_back(const FlipSides& s, std::string& why_not) const override {
    if (s.to_name != "target") {
      why_not = "the logical method's way back runs from the target only";
      return false;
    }
    if (!trigger_method().prepare_way_back(s, why_not)) {
      why_not = "no trigger capture on the target either: " + why_not;
      return false;
    }
    return true;
  }

  FlipStepResult arm_way_back(const FlipSides& s, const FlipLimits& limits) const override {
    std::string err;
    if (s.to_admin == nullptr || !set_link_enabled(*s.to_admin, forward_link(), false, err))
      return fail("disabling " + forward_link().subscription + " on the " + s.to_name + ": " +
                  (s.to_admin == nullptr ? std::string("no connection") : err));
    FlipStepResult out = trigger_method().arm_way_back(s, limits);
    out.data["forward_subscription"] = "disabled";
    return out;
  }

  bool way_back_installed(PgConn& side) const override { return has_trigger_capture(side); }
  const ReplicationMethod& way_back_method() const override { return trigger_method(); }
  ReplicationLag way_back_lag(PgConn& source, PgConn& target) const override {
    if (has_trigger_capture(target)) return trigger_method().way_back_lag(source, target);
    return lag(source, target, std::chrono::seconds(5));
  }

  // The forward subscription applies nothing any more, and its slot would keep the source's
  // WAL for as long as the way back stays open: both go.
  FlipStepResult way_back_opened(const FlipSides& s) const override {
    std::string err;
    if (s.to_admin == nullptr || !drop_link(*s.to_admin, s.from_admin, forward_link(), err))
      return fail("dropping " + forward_link().subscription + ": " +
                  (s.to_admin == nullptr ? std::string("no connection") : err));
    FlipStepResult out;
    out.data["forward_subscription"] = "dropped";
    return out;
  }

  void undo_way_back(const FlipSides& s, std::vector<std::string>& notes) const override {
    std::string err;
    if (s.to_admin != nullptr && link_exists(*s.to_admin, forward_link()) &&
        set_link_enabled(*s.to_admin, forward_link(), true, err))
      notes.push_back(forward_link().subscription + " enabled again");
    else if (!err.empty())
      notes.push_back("WARNING: could not enable " + forward_link().subscription + " again (" +
                      err + "): `pgcutoverctl replicate status`");
  }

  void clean_up(PgConn&, PgConn&, PgConn& source_admin, PgConn& target_admin,
                std::vector<std::string>& done, std::vector<std::string>& problems) const override {
    std::string err;
    if (drop_link(source_admin, target_admin, reverse_link(), err))
      done.push_back("reverse replication (subscription on source, slot on target) dropped");
    else
      problems.push_back(err);
    if (drop_link(target_admin, source_admin, forward_link(), err))
      done.push_back("forward replication (subscription on target, slot on source) dropped");
    else
      problems.push_back(err);
    if (drop_publications(target_admin, reverse_link(), err) &&
        drop_publications(source_admin, forward_link(), err))
      done.push_back("publications dropped on both sides");
    else
      problems.push_back(err);
  }

 private:
  static FlipStepResult fail(std::string why, boost::json::object data = {}) {
    return {false, std::move(why), std::move(data)};
  }
};

}  // namespace

const ReplicationMethod& logical_method() {
  static const LogicalMethod m;
  return m;
}

}  // namespace pgcutover::control
