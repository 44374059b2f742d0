// Pure logic of the cutover: the journal (write, read back, torn lines), the recovery rule
// (roll back before the flip step, finish from it on), sequence reconciliation (never
// backwards, margins, descending sequences), the fence SQL, and admin answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "control/command/proxy_fleet.h"
#include "control/cutover/fence.h"
#include "control/cutover/flip_plan.h"
#include "control/cutover/journal.h"
#include "control/cutover/pause_figures.h"
#include "control/cutover/sequences.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;

std::string temp_path() {
  char buf[] = "/tmp/pgcutover-journal-XXXXXX";
  int fd = mkstemp(buf);
  close(fd);
  std::remove(buf);
  return buf;
}

json::object rec(const std::string& run, const std::string& event, const std::string& step = {}) {
  json::object o{{"run", run}, {"event", event}};
  if (!step.empty()) o["step"] = step;
  if (event == "begin") o["direction"] = "forward";
  return o;
}

// Records appended survive a read back in order; a missing file is an empty journal.
TEST(control_flip, JournalAppendsAndReadsBack) {
  Journal j(temp_path());
  std::string e;
  EXPECT_TRUE(j.read(e).empty());
  EXPECT_TRUE(e.empty());
  ASSERT_TRUE(j.append(rec("r1", "begin"), e)) << e;
  ASSERT_TRUE(j.append(rec("r1", "start", "pause"), e)) << e;
  auto d = rec("r1", "done", "pause");
  d["data"] = json::object{{"epoch", 3}};
  ASSERT_TRUE(j.append(d, e)) << e;
  auto all = j.read(e);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].step, "pause");
  EXPECT_EQ(all[2].data.at("epoch").as_int64(), 3);
  EXPECT_EQ(step_data(all, "r1", "done", "pause").at("epoch").as_int64(), 3);
  std::remove(j.path().c_str());
}

// A torn last line (a crash during the write, never fsync'd) is ignored, not an error.
TEST(control_flip, JournalIgnoresATornLastLine) {
  auto recs = parse_journal(
      "{\"run\":\"a\",\"event\":\"begin\",\"direction\":\"forward\"}\n"
      "{\"run\":\"a\",\"event\":\"done\",\"step\":\"fence\"}\n"
      "{\"run\":\"a\",\"event\":\"done\",\"st");
  ASSERT_EQ(recs.size(), 2u);
  auto s = summarize(recs);
  EXPECT_EQ(s.last_done, FlipStep::kFence);
}

// An unwritable journal path is refused with a message naming the file.
TEST(control_flip, JournalUnwritableIsAnError) {
  Journal j("/nonexistent-dir/flip.journal");
  std::string e;
  EXPECT_FALSE(j.append(rec("r", "begin"), e));
  EXPECT_NE(e.find("/nonexistent-dir/flip.journal"), std::string::npos);
}

JournalSummary run_until(std::optional<FlipStep> started, std::optional<FlipStep> done,
                         bool ended = false) {
  JournalSummary s;
  s.have_run = true;
  s.run_id = "r";
  s.last_started = started;
  s.last_done = done;
  s.ended = ended;
  return s;
}

// Before the flip step: roll back; from the flip step on: finish; an ended run: nothing.
TEST(control_flip, RecoveryRollsBackBeforeTheFlipAndFinishesFromIt) {
  EXPECT_EQ(decide_recovery(JournalSummary{}), RecoveryAction::kNothing);
  EXPECT_EQ(decide_recovery(run_until(FlipStep::kResume, FlipStep::kResume, true)),
            RecoveryAction::kNothing);
  for (FlipStep s : {FlipStep::kPreconditions, FlipStep::kPause, FlipStep::kFence,
                     FlipStep::kCatchUp, FlipStep::kSequences, FlipStep::kReplication})
    EXPECT_EQ(decide_recovery(run_until(s, s)), RecoveryAction::kRollBack) << step_name(s);
  // Started the flip but not journaled done: some proxy may already serve on the target.
  EXPECT_EQ(decide_recovery(run_until(FlipStep::kFlip, FlipStep::kReplication)),
            RecoveryAction::kFinish);
  EXPECT_EQ(decide_recovery(run_until(FlipStep::kResume, FlipStep::kFlip)),
            RecoveryAction::kFinish);
  // Traffic on the destination, the reverse subscription not made yet (its slot keeps the
  // writes): finish, which makes it.
  EXPECT_EQ(decide_recovery(run_until(FlipStep::kSubscribe, FlipStep::kResume)),
            RecoveryAction::kFinish);
  EXPECT_EQ(steps_to_finish(run_until(FlipStep::kFlip, FlipStep::kFlip)),
            (std::vector<FlipStep>{FlipStep::kFlip, FlipStep::kResume, FlipStep::kSubscribe}));
}

// The undo list holds the started steps that changed something, newest first, and the fence
// from the pause's start on.
TEST(control_flip, RollbackUndoesStartedStepsNewestFirst) {
  EXPECT_EQ(steps_to_undo(run_until(FlipStep::kFence, FlipStep::kPause)),
            (std::vector<FlipStep>{FlipStep::kFence, FlipStep::kPause}));
  // The fence's own start is not fsync'd: a pause started may have fenced.
  EXPECT_EQ(steps_to_undo(run_until(FlipStep::kPause, FlipStep::kPreconditions)),
            (std::vector<FlipStep>{FlipStep::kFence, FlipStep::kPause}));
  EXPECT_EQ(steps_to_undo(run_until(FlipStep::kReplication, FlipStep::kSequences)),
            (std::vector<FlipStep>{FlipStep::kReplication, FlipStep::kFence, FlipStep::kPause}));
  EXPECT_TRUE(steps_to_undo(run_until(FlipStep::kPreconditions, std::nullopt)).empty());
}

// A step whose start is written without fsync may be lost in a crash: the journal then ends
// at the last synced start (with the step before it done), and the recovery must be the same
// as from the lost start itself: same action, same undo list.
TEST(control_flip, AStartLeftUnsyncedRecoversLikeTheStepBefore) {
  std::optional<FlipStep> synced, done_before_synced, previous;
  int unsynced = 0;
  for (FlipStep s : kAllSteps) {
    if (start_needs_sync(s)) {
      synced = s;
      done_before_synced = previous;
    } else {
      ++unsynced;
      ASSERT_TRUE(synced.has_value()) << step_name(s);
      JournalSummary lost = run_until(synced, done_before_synced);
      JournalSummary kept = run_until(s, previous);
      EXPECT_EQ(decide_recovery(lost), decide_recovery(kept)) << step_name(s);
      EXPECT_EQ(steps_to_undo(lost), steps_to_undo(kept)) << step_name(s);
      EXPECT_EQ(steps_to_finish(lost), steps_to_finish(kept)) << step_name(s);
    }
    previous = s;
  }
  EXPECT_EQ(unsynced, 3);  // fence, catch-up and sequences
  EXPECT_TRUE(start_needs_sync(FlipStep::kPause));
  EXPECT_TRUE(start_needs_sync(FlipStep::kReplication));
  EXPECT_TRUE(start_needs_sync(FlipStep::kFlip));
}

// summarize() follows the last run only and reads its direction.
TEST(control_flip, SummaryFollowsTheLastRun) {
  auto recs = parse_journal(
      "{\"run\":\"a\",\"event\":\"begin\",\"direction\":\"forward\"}\n"
      "{\"run\":\"a\",\"event\":\"done\",\"step\":\"resume\"}\n"
      "{\"run\":\"a\",\"event\":\"end\",\"outcome\":\"completed\"}\n"
      "{\"run\":\"b\",\"event\":\"begin\",\"direction\":\"backward\"}\n"
      "{\"run\":\"b\",\"event\":\"start\",\"step\":\"catch_up\"}\n");
  auto s = summarize(recs);
  EXPECT_EQ(s.run_id, "b");
  EXPECT_EQ(s.direction, Direction::kBackward);
  EXPECT_FALSE(s.ended);
  EXPECT_EQ(s.last_started, FlipStep::kCatchUp);
  EXPECT_FALSE(s.last_done.has_value());
  EXPECT_EQ(decide_recovery(s), RecoveryAction::kRollBack);
}

TEST(control_flip, StepNamesRoundTrip) {
  for (FlipStep s : kAllSteps) EXPECT_EQ(parse_step(step_name(s)), s);
  EXPECT_FALSE(parse_step("nope"));
  EXPECT_EQ(from_backend(Direction::kBackward), "target");
  EXPECT_EQ(to_backend(Direction::kBackward), "source");
}

SequenceValue seq(const char* name, std::optional<int64_t> v, int64_t inc = 1) {
  return {"public", name, v, inc};
}

// Sequences: source + margin, never backwards, unused ones skipped, missing ones listed.
TEST(control_flip, SequencesMoveForwardOnly) {
  std::vector<std::string> missing;
  auto plan = plan_sequence_updates(
      {seq("a", 100), seq("b", 50), seq("c", std::nullopt), seq("d", 7), seq("e", -100, -1)},
      {seq("a", 10), seq("b", 5000), seq("c", 1), seq("e", -10, -1)}, 1000, &missing);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].name, "a");
  EXPECT_EQ(plan[0].new_value, 1100);
  EXPECT_EQ(plan[1].name, "e");  // descending: further down is ahead
  EXPECT_EQ(plan[1].new_value, -1100);
  EXPECT_EQ(missing, std::vector<std::string>{"public.d"});
  // Never called on the target (NULL) still gets set; saturation instead of overflow.
  auto p2 = plan_sequence_updates({seq("x", INT64_MAX - 5)}, {seq("x", std::nullopt)}, 1000);
  ASSERT_EQ(p2.size(), 1u);
  EXPECT_EQ(p2[0].new_value, INT64_MAX);
  // Increment 5: the margin is in increments.
  auto p3 = plan_sequence_updates({seq("y", 100, 5)}, {seq("y", 1, 5)}, 10);
  EXPECT_EQ(p3[0].new_value, 150);
}

TEST(control_flip, SetvalAndFenceSqlQuoteNames) {
  SequenceUpdate u{"my schema", "it's", 1, std::nullopt, 42};
  EXPECT_EQ(setval_sql(u), "SELECT setval('\"my schema\".\"it''s\"', 42, true)");
  EXPECT_EQ(fence_role_sql("app"), "ALTER ROLE \"app\" SET default_transaction_read_only = on");
  EXPECT_EQ(unfence_role_sql("App\"x"),
            "ALTER ROLE \"App\"\"x\" RESET default_transaction_read_only");
}

// Admin answers: a command result, a status document, an HTTP error and no answer at all.
TEST(control_flip, ProxyAnswersParse) {
  auto a =
      parse_proxy_answer("http://p1", true, 200,
                         "{\"command\":\"flip\",\"ok\":true,\"result\":\"ok\",\"changed\":true,"
                         "\"state\":\"running\",\"backend\":\"target\",\"epoch\":4}",
                         "");
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.epoch, 4u);
  EXPECT_EQ(a.backend, "target");
  auto s = parse_proxy_answer("http://p1", true, 200,
                              "{\"state\":\"running\",\"backend\":\"source\",\"epoch\":3}", "");
  EXPECT_TRUE(s.ok);
  auto b = parse_proxy_answer("http://p2", true, 409,
                              "{\"ok\":false,\"result\":\"stale_epoch\",\"message\":\"m\"}", "");
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.result, "stale_epoch");
  auto c = parse_proxy_answer("http://p3", false, 0, "", "connect: Connection refused");
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.result, "unreachable");
  EXPECT_FALSE(all_ok({a, b}));
  EXPECT_NE(describe_failures({a, b, c}).find("http://p3: unreachable"), std::string::npos);
}

// The printed write pause is the worst wait any held client saw, over every proxy whose gate
// reopened; failed answers count for nothing; a proxy that does not report its clients' waits
// makes the figure fall back to the controller's span, said as such.
TEST(PauseFigures, WorstClientWaitAndTheSpanFallback) {
  using Clock = PauseFigures::Clock;
  auto answer = [](bool ok, const char* body, Clock::time_point at) {
    ProxyAnswer a = parse_proxy_answer("http://p", true, ok ? 200 : 409, body, "");
    a.answered_at = at;
    return a;
  };
  const auto t0 = Clock::now();
  PauseFigures f;
  json::object none;
  EXPECT_EQ(f.report(none), "");
  EXPECT_TRUE(none.empty());
  f.pause_sent(t0);
  f.pause_sent(t0 + std::chrono::milliseconds(50));  // the first PAUSE counts
  f.reopened(answer(true, R"({"ok":true,"client_wait_ms":{"held":3,"worst":120.5,"p99":120}})",
                    t0 + std::chrono::milliseconds(300)));
  f.reopened(answer(true, R"({"ok":true,"client_wait_ms":{"held":2,"worst":80,"p99":80}})",
                    t0 + std::chrono::milliseconds(400)));
  f.reopened(answer(false, R"({"ok":false,"error":"busy","client_wait_ms":{"held":9,"worst":999}})",
                    t0 + std::chrono::milliseconds(900)));
  json::object rep;
  std::string line = f.report(rep);
  EXPECT_DOUBLE_EQ(rep.at("write_pause_ms").as_double(), 120.5);
  EXPECT_EQ(rep.at("clients_held").as_int64(), 5);
  EXPECT_NEAR(rep.at("controller_span_ms").as_double(), 400, 1);
  EXPECT_NE(line.find("write pause: 121 ms"), std::string::npos) << line;

  f.reopened(answer(true, R"({"ok":true})", t0 + std::chrono::milliseconds(500)));
  json::object old;
  line = f.report(old);
  EXPECT_NEAR(old.at("write_pause_ms").as_double(), 500, 1);
  EXPECT_FALSE(old.contains("clients_held"));
  EXPECT_NE(line.find("too old"), std::string::npos) << line;
}

}  // namespace
}  // namespace pgcutover::control
