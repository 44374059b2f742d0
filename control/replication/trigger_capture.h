// The trigger method's capture side, shared by the commands and the apply (trigger.cpp): the
// registry, installing and arming a capture, what a session of the method sets, the apply lock,
// and what the capture missed. Internal to this folder; trigger.h is the method's interface.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "control/db/catalog.h"
#include "control/db/pg_conn.h"
#include "control/replication/trigger_sql.h"

namespace pgcutover::control {

// Where the apply remembers which insert-only rows it already wrote, in the same transaction
// as the rows (on the side it applies to): a crash between that commit and the delete of the
// entries must not insert them twice (keyed rows are idempotent by nature; these are not).
// An entry's handle there is "<table id>:<xmin>:<ctid>": a ctid alone could be reused by a
// later entry once the delete committed, but not by the same transaction (only after 2^32
// more, and a handle lives there only until the round after its own).
extern const char* const kAppliedRowsDdl;

// A text[] literal of `v` (every element quoted).
std::string array_of(const std::vector<std::string>& v);

// A session of the method: writes past a fence in its own session only (a fence is the role's
// default_transaction_read_only, and the way back applies to the fenced source), never waits
// forever on the application's locks, and marks its writes as the apply's so that the capture
// triggers on that side skip them (kApplyingSetting).
void prepare_session(PgConn& c);

// The registry joined with the catalogs: every captured table with its columns and types.
// `side` names where the capture is, for messages.
std::optional<std::vector<CapturedTable>> load_captured(PgConn& source, std::string& error,
                                                        const std::string& side = "source");

// A second connection like `c` (same URL and role), for parallel work.
std::optional<PgConn> connect_like(const PgConn& c, const char* role, std::string& error);

// What the capture missed: a TRUNCATE (or UPDATE/DELETE of an insert-only table) marked by the
// guard trigger, or a schema change since the capture was installed or armed. "" when none,
// else the sentence for the operator, with the fix.
std::string check_broken(PgConn& source, const std::string& side = "source");

// Tables that cannot converge by key: no primary key, and UPDATE or DELETE seen. "" when none.
std::string keyless_changing(const std::vector<TableInfo>& all);

struct CaptureInstall {
  bool ok = false;
  std::string error;
  int64_t keyed = 0, insert_only = 0;
};
// The registry, and for each table its log, functions and triggers, in one transaction on
// `side`. Idempotent: a table already registered keeps its id, its triggers are re-created
// and its broken mark cleared.
CaptureInstall install_capture(PgConn& side, const std::vector<TableInfo>& all,
                               const std::string& side_name);

// Holds the apply lock for one scope; released by the destructor (or by the session ending
// when the process is killed, which is why it is a session lock on the capture side).
class ApplyLock {
 public:
  ApplyLock(PgConn& source, std::chrono::milliseconds wait);
  ~ApplyLock();
  ApplyLock(const ApplyLock&) = delete;
  ApplyLock& operator=(const ApplyLock&) = delete;
  bool held() const { return held_; }
  const std::string& error() const { return error_; }

 private:
  PgConn& source_;
  bool held_ = false;
  std::string error_;
};

}  // namespace pgcutover::control
