// A replication method: how the target gets the source's writes until the cutover, and what
// the cutover must wait for. Every command that depends on the method (replicate, lag, status,
// validate, preflight, flip, revert, finalize) asks the method object instead of comparing its
// name, so a new method is one new file in this folder and one line in method.cpp's list.
//
//   logical   native publication/subscription; its way back is a reverse link when the source
//             can subscribe, else the trigger method's capture on the target
//   trigger   change capture with triggers (needs table ownership only: Heroku)
//   dump      nothing before the cutover; pg_dump/pg_restore inside the write pause
//   external  another tool replicates (AWS DMS); pgcutover measures it with a heartbeat row
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "control/command/context.h"
#include "control/db/pg_conn.h"
#include "control/replication/lag.h"

namespace pgcutover::control {

// What a method asks of the databases; preflight judges each check by these.
struct MethodNeeds {
  bool logical_decoding = false;     // wal_level=logical, a REPLICATION role, a free slot
  bool target_subscription = false;  // CREATE SUBSCRIPTION on the target
  bool primary_keys = false;     // changes keyed by primary key (replica identity is not enough)
  bool table_ownership = false;  // triggers on every table
  bool continuous = true;        // the target follows the source until the cutover
};

// How a revert after the flip can bring the destination's writes back, as the preflight judges
// it before anything runs: by subscribing the side left behind to the destination (when its
// role can), and otherwise by a trigger capture on the destination (table ownership only).
struct WayBackKinds {
  bool reverse_subscription = false;
  bool target_capture = false;
};

// What a method reads before the pause so as to spend less inside it (the trigger method: both
// sides' captured tables). One per run, owned by the run, filled by the method as it likes.
struct FlipMemo {
  virtual ~FlipMemo() = default;
};

// The two sides of a cutover in the direction traffic moves.
struct FlipSides {
  PgConn& from;        // app role on the side being left
  PgConn& to;          // app role on the destination
  PgConn& from_admin;  // the role that owns replication objects there
  std::string from_name, to_name;
  std::string slot;                           // the slot that feeds the destination now (logical)
  std::shared_ptr<FlipMemo>* memo = nullptr;  // the run's; null outside a flip
  PgConn* to_admin = nullptr;  // the role that owns replication objects on the destination
};

// The operator's bounds for the cutover (flip options).
struct FlipLimits {
  std::chrono::milliseconds catch_up_timeout{30000};
  int64_t max_lag_bytes = 16 * 1024 * 1024;
  double max_lag_seconds = 5;
  std::string dump_jobs = "4";
};

// The outcome of one flip-time call: `data` goes to the journal and the report.
struct FlipStepResult {
  bool ok = true;
  std::string failure;  // why not, with what to do
  boost::json::object data;
};

class ReplicationMethod {
 public:
  virtual ~ReplicationMethod() = default;

  virtual std::string_view name() const = 0;
  virtual MethodNeeds needs() const = 0;
  // None by default: a revert after the first write on the destination loses writes.
  virtual WayBackKinds way_back_kinds() const { return {}; }

  // `replicate start | status | stop`, exit code as the command's.
  virtual int start(CommandContext& ctx) const = 0;
  virtual int status(CommandContext& ctx) const = 0;
  virtual int stop(CommandContext& ctx) const = 0;

  // How far the target is behind now. `heartbeat_timeout` bounds a measurement that writes and
  // waits (external).
  virtual ReplicationLag lag(PgConn& source, PgConn& target,
                             std::chrono::milliseconds heartbeat_timeout) const = 0;

  // Catch-up proof for a fixed point: true when the method can show that everything the
  // source committed before the call is on the target (validation re-checks a difference
  // after it). Methods without one leave the target as it is.
  virtual bool proves_catch_up() const { return false; }
  virtual bool wait_caught_up(PgConn& /*source*/, PgConn& /*target*/,
                              std::chrono::milliseconds /*timeout*/) const {
    return true;
  }

  // The flip. Before the pause: is replication healthy and close enough that the barrier
  // inside the write pause will be short? Inside the pause, with the side being left fenced:
  // the barrier itself.
  virtual FlipStepResult flip_ready(const FlipSides& sides, const FlipLimits& limits) const = 0;
  virtual FlipStepResult flip_catch_up(const FlipSides& sides, const FlipLimits& limits) const = 0;
  // Inside the pause, beside the fence (which runs on `from_admin` and spares `from`): a head
  // start on the barrier, applying or awaiting what was committed before the pause, so that
  // flip_catch_up after the fence is left with only what the fence itself let through. The
  // barrier does not rely on it; a failure here is left for flip_catch_up to meet.
  virtual FlipStepResult flip_head_start(const FlipSides& /*sides*/,
                                         const FlipLimits& /*limits*/) const {
    return {};
  }

  // Can the side being left be fed back from the destination after the flip (a revert that
  // loses nothing)? `why_not` says why not, for the operator.
  virtual bool can_reverse(PgConn& /*from_admin*/, const std::string& /*from_name*/,
                           std::string& why_not) const {
    why_not = "the " + std::string(name()) + " method has no reverse replication";
    return false;
  }

  // A way back without a logical link: the destination gets a capture of its own, installed
  // outside the pause (prepare_way_back; false with `why_not` when it cannot) and armed inside
  // it, after the catch-up (arm_way_back: from then on it holds exactly the destination's
  // writes). The side being left is fed back by `replicate apply --reverse`; a revert then
  // runs this method the other way. way_back_installed(): whether `side` carries one.
  virtual bool prepare_way_back(const FlipSides& /*sides*/, std::string& why_not) const {
    why_not = "the " + std::string(name()) + " method has no reverse capture";
    return false;
  }
  virtual FlipStepResult arm_way_back(const FlipSides& /*sides*/,
                                      const FlipLimits& /*limits*/) const {
    return {};
  }
  virtual bool way_back_installed(PgConn& /*side*/) const { return false; }
  // The method a revert runs over that capture (the trigger method's, whichever method went
  // forward).
  virtual const ReplicationMethod& way_back_method() const { return *this; }
  // After the gates opened on the destination (step 9), for a run with a way back: what the
  // forward replication no longer needs goes (the logical method: its subscription and the
  // slot that would hold the source's WAL).
  virtual FlipStepResult way_back_opened(const FlipSides& /*sides*/) const { return {}; }
  // A rollback after arm_way_back: the forward replication as it was. Appends what it did.
  virtual void undo_way_back(const FlipSides& /*sides*/,
                             std::vector<std::string>& /*notes*/) const {}
  // `lag --reverse`: how far the way back is behind. The logical method's lag() already
  // measures the reverse link once a flip built it.
  virtual ReplicationLag way_back_lag(PgConn& source, PgConn& target) const {
    return lag(source, target, std::chrono::seconds(5));
  }

  // `finalize`: removes what this method left on either database. Runs for every method,
  // whichever was used: a method never started has nothing to remove. Appends what was done
  // and what could not be.
  virtual void clean_up(PgConn& /*source*/, PgConn& /*target*/, PgConn& /*source_admin*/,
                        PgConn& /*target_admin*/, std::vector<std::string>& /*done*/,
                        std::vector<std::string>& /*problems*/) const {}
};

// The methods an operator can choose, in the order preflight lists them.
const std::vector<const ReplicationMethod*>& replication_methods();
// nullptr when `name` is not one of them.
const ReplicationMethod* find_method(std::string_view name);
// "logical, trigger, dump or external": for usage errors.
std::string method_choices(std::string_view last_separator = " or ");

// The revert when the way back was never built: no barrier, writes on the side being left
// since the flip stay there. Not offered to `replicate start`.
const ReplicationMethod& lossy_revert_method();

// One implementation per file in this folder.
const ReplicationMethod& logical_method();
const ReplicationMethod& trigger_method();
const ReplicationMethod& dump_method();
const ReplicationMethod& external_method();

}  // namespace pgcutover::control
