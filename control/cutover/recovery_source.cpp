#include "control/cutover/recovery_source.h"

#include <cstdlib>

namespace pgcutover::control {

namespace json = boost::json;

RecoverySource journal_source(const std::vector<JournalRecord>& records,
                              const std::string& journal_path) {
  RecoverySource src;
  src.js = summarize(records);
  src.where = "the journal " + journal_path;
  src.begin = begin_data(records, src.js.run_id);
  for (const auto& r : records)
    if (r.run == src.js.run_id && r.event == "plan")
      if (auto it = r.data.find("reverse"); it != r.data.end() && it->value().is_bool())
        src.reverse = it->value().as_bool();
  return src;
}

namespace {

std::optional<RecoverySource> database_source(const CutoverRunRecord& rec,
                                              const std::vector<FleetAuthority>& authority) {
  auto dir = parse_direction(rec.direction);
  if (!dir) return std::nullopt;
  RecoverySource src;
  src.where =
      "the fleet's databases (run begun by " + rec.controller + " at " + rec.started_at + ")";
  src.js.have_run = true;
  src.js.run_id = rec.run;
  src.js.direction = *dir;
  std::optional<FleetAuthority> newest;
  for (const auto& a : authority)
    if (a.backend && (!newest || a.epoch > newest->epoch)) newest = a;
  src.js.last_started =
      newest && newest->backend == to_backend(*dir) ? FlipStep::kFlip : FlipStep::kReplication;
  boost::system::error_code ec;
  json::value v = json::parse(rec.begin_data, ec);
  if (!ec && v.is_object()) {
    src.begin = v.as_object();
    if (auto it = src.begin.find("reverse"); it != src.begin.end() && it->value().is_bool())
      src.reverse = it->value().as_bool();
  }
  return src;
}

// Run ids begin with the unix time their run began.
long long began(const std::string& run) {
  return std::strtoll(run.c_str(), nullptr, 10);
}

}  // namespace

RecoveryChoice choose_recovery(RecoverySource journal,
                               const std::optional<CutoverRunRecord>& db_run,
                               const std::vector<FleetAuthority>& authority) {
  RecoveryChoice out;
  out.source = std::move(journal);
  RecoverySource& src = out.source;
  if (decide_recovery(src.js) != RecoveryAction::kNothing && db_run &&
      (db_run->run == src.js.run_id ? db_run->ended : began(db_run->run) > began(src.js.run_id))) {
    // Finished by another controller, or followed by a newer run: undoing it now would undo
    // what came after.
    bool same = db_run->run == src.js.run_id;
    out.marked_run = src.js.run_id;
    out.marked_outcome = same ? "ended_elsewhere" : "superseded";
    out.marked = "run " + src.js.run_id + " in " + src.where + " " +
                 (same ? "was ended by another controller (" + db_run->outcome + ")"
                       : "was followed by run " + db_run->run + " (" + db_run->controller + ")") +
                 ": marked ended here";
    src.js = JournalSummary{};
  }
  // (The same run unfinished in the databases but ended in the journal: only its end was not
  // recorded there.)
  if (decide_recovery(src.js) == RecoveryAction::kNothing && db_run && !db_run->ended &&
      db_run->run != src.js.run_id)
    if (auto other = database_source(*db_run, authority)) src = std::move(*other);
  return out;
}

}  // namespace pgcutover::control
