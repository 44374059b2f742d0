// The flip's journal: one JSON object per line, appended and fsync'd before the controller
// goes on, so a controller that dies anywhere leaves a record of how far it got, and
// `pgcutoverctl recover` can finish or roll back (flip_plan.h decides which). A step's "done"
// is written without its own fsync: recovery goes by the steps started, and the next record's
// fsync carries it; so is the "start" of a step whose recovery is the step before's
// (start_needs_sync). Each fsync inside the write pause is time every held client waits.
//
//   {"run":"1718000000-4242","event":"begin","direction":"forward","t":..., "data":{...}}
//   {"run":"...","event":"start","step":"fence","t":...}
//   {"run":"...","event":"done","step":"fence","t":...,"ms":12,"data":{"roles":["app"]}}
//   {"run":"...","event":"end","outcome":"completed","t":...}
//
// No secrets are written (role names, LSNs, epochs, timings only). A torn last line (a crash
// during write) is ignored: it was never fsync'd, so the step it announced never ran past it.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/cutover/flip_plan.h"

namespace pgcutover::control {

struct JournalRecord {
  std::string run;
  std::string event;  // begin | start | done | end
  std::string step;   // for start/done
  boost::json::object data;
  boost::json::object raw;
};

class Journal {
 public:
  explicit Journal(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // Appends one line and, when `sync`, fsyncs the file (and, on first creation, its
  // directory). False with `error` set when the disk refuses: the caller must not go on.
  bool append(const boost::json::object& record, std::string& error, bool sync = true);

  // Every complete record, oldest first. A missing file is an empty journal.
  std::vector<JournalRecord> read(std::string& error) const;

 private:
  std::string path_;
};

// Parses journal text (one JSON object per line; torn or garbage lines skipped).
std::vector<JournalRecord> parse_journal(const std::string& text);

// The last run in the records, reduced for decide_recovery().
JournalSummary summarize(const std::vector<JournalRecord>& records);

// The data of the last record of `event`/`step` in run `run` (empty when none).
boost::json::object step_data(const std::vector<JournalRecord>& records, const std::string& run,
                              const std::string& event, const std::string& step);
// The "begin" record's data of the last run.
boost::json::object begin_data(const std::vector<JournalRecord>& records, const std::string& run);

}  // namespace pgcutover::control
