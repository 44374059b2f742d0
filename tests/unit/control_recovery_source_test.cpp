// Which run `recover` takes (control/cutover/recovery_source.h): the journal's, unless the
// fleet's databases say it is over; the databases' unfinished run when the journal has none,
// finished when the authority names its destination, rolled back otherwise.
#include <gtest/gtest.h>

#include "control/cutover/recovery_source.h"

namespace pgcutover::control {
namespace {

RecoverySource journal_run(const std::string& run, std::optional<FlipStep> started, bool ended) {
  RecoverySource s;
  s.js.have_run = !run.empty();
  s.js.run_id = run;
  s.js.last_started = started;
  s.js.ended = ended;
  s.where = "the journal j";
  return s;
}

CutoverRunRecord db_run(const std::string& run, bool ended, const std::string& direction) {
  return CutoverRunRecord{run,
                          direction,
                          "pgcutoverctl pid 7 on laptop-b",
                          "{\"method\":\"logical\",\"fence_roles\":[\"app\"],\"reverse\":true}",
                          "2026-12-05T22:00:00Z",
                          ended,
                          ended ? "completed" : ""};
}

std::vector<FleetAuthority> authority(const std::string& backend, std::uint64_t epoch) {
  return {FleetAuthority{"source", backend, epoch}, FleetAuthority{"target", backend, epoch}};
}

TEST(RecoverySource, TheJournalsUnfinishedRunWinsWhenTheDatabasesAgree) {
  auto c = choose_recovery(journal_run("1700000000-1", FlipStep::kPause, false),
                           db_run("1700000000-1", false, "forward"), authority("source", 0));
  EXPECT_TRUE(c.marked.empty());
  EXPECT_EQ(c.source.where, "the journal j");
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kRollBack);
}

TEST(RecoverySource, ARunEndedElsewhereIsMarkedNotUndone) {
  auto c = choose_recovery(journal_run("1700000000-1", FlipStep::kFlip, false),
                           db_run("1700000000-1", true, "forward"), authority("target", 1));
  EXPECT_EQ(c.marked_run, "1700000000-1");
  EXPECT_EQ(c.marked_outcome, "ended_elsewhere");
  EXPECT_NE(c.marked.find("was ended by another controller (completed)"), std::string::npos);
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kNothing);
}

TEST(RecoverySource, ARunFollowedByANewerOneIsSupersededAndTheNewerOneRecovered) {
  auto c = choose_recovery(journal_run("1700000000-1", FlipStep::kFence, false),
                           db_run("1700000500-9", false, "backward"), authority("source", 3));
  EXPECT_EQ(c.marked_outcome, "superseded");
  EXPECT_EQ(c.source.js.run_id, "1700000500-9");
  EXPECT_EQ(c.source.js.direction, Direction::kBackward);
  // A revert's destination is the source: the authority names it, so its flip step started.
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kFinish);
}

TEST(RecoverySource, AnOlderDatabaseRunLeavesTheJournalAlone) {
  auto c = choose_recovery(journal_run("1700000500-1", FlipStep::kPreconditions, false),
                           db_run("1700000000-9", true, "forward"), authority("source", 0));
  EXPECT_TRUE(c.marked.empty());
  EXPECT_EQ(c.source.js.run_id, "1700000500-1");
}

TEST(RecoverySource, ADeadControllersRunIsFoundInTheDatabases) {
  // Its flip step had not started (the authority still names the source): roll back, with
  // every step up to the reverse slot taken as started, and the plan read back.
  auto c = choose_recovery(journal_run("", std::nullopt, false),
                           db_run("1700000000-9", false, "forward"), authority("source", 4));
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kRollBack);
  EXPECT_EQ(c.source.js.last_started, FlipStep::kReplication);
  EXPECT_NE(c.source.where.find("laptop-b"), std::string::npos);
  ASSERT_TRUE(c.source.reverse.has_value());
  EXPECT_TRUE(*c.source.reverse);
  EXPECT_EQ(c.source.begin.at("method").as_string(), "logical");
  // The authority names the destination: finish.
  c = choose_recovery(journal_run("", std::nullopt, false),
                      db_run("1700000000-9", false, "forward"), authority("target", 5));
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kFinish);
}

TEST(RecoverySource, NothingWhenEverythingEnded) {
  auto c = choose_recovery(journal_run("1700000000-1", FlipStep::kResume, true),
                           db_run("1700000000-1", true, "forward"), authority("target", 1));
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kNothing);
  // The journal ended it but the databases missed the end: still nothing.
  c = choose_recovery(journal_run("1700000000-1", FlipStep::kResume, true),
                      db_run("1700000000-1", false, "forward"), authority("target", 1));
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kNothing);
  c = choose_recovery(journal_run("", std::nullopt, false), std::nullopt, {});
  EXPECT_EQ(decide_recovery(c.source.js), RecoveryAction::kNothing);
}

}  // namespace
}  // namespace pgcutover::control
