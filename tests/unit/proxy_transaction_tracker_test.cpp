// TransactionTracker on recorded message sequences: the messages a real client and server
// exchange (simple and extended protocol, pipelines, COPY the way psql and asyncpg send it,
// failed transactions), and the one answer pooling depends on: is the server connection free.
#include "proxy/session/transaction_tracker.h"

#include <gtest/gtest.h>

#include <string_view>

namespace pgcutover::proxy {
namespace {

// Client messages by type letter, in order ("PBDES": Parse, Bind, Describe, Execute, Sync).
int send(TransactionTracker& t, std::string_view types) {
  int queries = 0;
  for (char c : types) queries += t.client_sent(c) ? 1 : 0;
  return queries;
}

TEST(TransactionTracker, SimpleQueryIsFreeAtItsReadyForQuery) {
  TransactionTracker t;
  EXPECT_TRUE(t.free());
  EXPECT_EQ(send(t, "Q"), 1);
  EXPECT_TRUE(t.busy());
  EXPECT_FALSE(t.free());
  auto a = t.ready_for_query('I');
  EXPECT_TRUE(a.release_point);
  EXPECT_FALSE(a.was_busy);
  EXPECT_FALSE(a.unexpected);
  EXPECT_TRUE(t.free());
}

TEST(TransactionTracker, ExplicitTransactionIsFreeOnlyAfterCommit) {
  TransactionTracker t;
  send(t, "Q");  // BEGIN
  EXPECT_FALSE(t.ready_for_query('T').release_point);
  EXPECT_TRUE(t.busy());  // idle in transaction still holds the connection
  send(t, "Q");           // INSERT
  EXPECT_FALSE(t.ready_for_query('T').release_point);
  send(t, "Q");  // COMMIT
  auto a = t.ready_for_query('I');
  EXPECT_TRUE(a.release_point);
  EXPECT_TRUE(a.was_busy);
  EXPECT_TRUE(t.free());
}

TEST(TransactionTracker, ExtendedMessagesHoldTheConnectionUntilSyncIsAnswered) {
  TransactionTracker t;
  EXPECT_EQ(send(t, "PBDE"), 0);
  EXPECT_TRUE(t.extended_pending());
  EXPECT_TRUE(t.busy());
  EXPECT_EQ(t.outstanding(), 0);
  EXPECT_EQ(send(t, "S"), 1);
  EXPECT_FALSE(t.extended_pending());
  EXPECT_TRUE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.free());
}

TEST(TransactionTracker, FlushWithoutSyncIsNotFree) {
  TransactionTracker t;
  send(t, "PBEH");  // a driver asking for results early, Sync to come
  EXPECT_TRUE(t.busy());
  EXPECT_FALSE(t.settled());
}

TEST(TransactionTracker, PipelineIsFreeAtTheLastReadyForQuery) {
  TransactionTracker t;
  EXPECT_EQ(send(t, "PBESPBESBES"), 3);
  EXPECT_EQ(t.outstanding(), 3);
  EXPECT_FALSE(t.ready_for_query('I').release_point);
  EXPECT_FALSE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.free());
}

TEST(TransactionTracker, MessagesSentAfterASyncKeepTheConnection) {
  TransactionTracker t;
  send(t, "PBES");
  send(t, "PB");  // the next batch is already on its way when the first is answered
  EXPECT_FALSE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.busy());
}

TEST(TransactionTracker, CopyFromStdinAsPsqlSendsIt) {
  TransactionTracker t;
  send(t, "Q");         // COPY t FROM STDIN
  t.copy_in_started();  // CopyInResponse
  EXPECT_TRUE(t.busy());
  send(t, "ddd");
  EXPECT_TRUE(t.busy());
  send(t, "c");  // CopyDone
  EXPECT_TRUE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.free());
}

TEST(TransactionTracker, CopyStreamedBeforeItsResponseAsAsyncpgSendsIt) {
  TransactionTracker t;
  send(t, "Qddc");  // the whole COPY right behind the Query
  t.copy_in_started();
  EXPECT_TRUE(t.ready_for_query('I').release_point);
  EXPECT_TRUE(t.free());  // no COPY left open
}

TEST(TransactionTracker, SyncInsideCopyAsksForNothing) {
  TransactionTracker t;
  send(t, "Q");
  t.copy_in_started();
  EXPECT_EQ(send(t, "S"), 0);  // the server ignores Sync during COPY FROM STDIN
  EXPECT_EQ(t.outstanding(), 1);
  send(t, "f");  // CopyFail
  EXPECT_TRUE(t.ready_for_query('I').release_point);
}

TEST(TransactionTracker, CopyThatFailedToStartForgetsTheEarlyEnd) {
  TransactionTracker t;
  send(t, "Qdc");  // COPY into a missing table, data streamed behind it
  EXPECT_TRUE(t.ready_for_query('I').release_point);  // ErrorResponse, no CopyInResponse
  send(t, "Q");                                       // the next COPY, sent normally
  t.copy_in_started();
  EXPECT_TRUE(t.busy());  // really open: the early end above must not close it
  send(t, "c");
  EXPECT_TRUE(t.ready_for_query('I').release_point);
}

TEST(TransactionTracker, FailedTransactionIsNotFreeUntilRolledBack) {
  TransactionTracker t;
  send(t, "Q");
  t.ready_for_query('T');
  send(t, "Q");  // fails
  EXPECT_FALSE(t.ready_for_query('E').release_point);
  EXPECT_TRUE(t.failed_transaction());
  EXPECT_TRUE(t.busy());
  send(t, "Q");  // ROLLBACK
  EXPECT_TRUE(t.ready_for_query('I').release_point);
  EXPECT_FALSE(t.failed_transaction());
}

TEST(TransactionTracker, ReadyForQueryNobodyAskedForIsReported) {
  TransactionTracker t;
  auto a = t.ready_for_query('I');
  EXPECT_TRUE(a.unexpected);
  EXPECT_EQ(t.outstanding(), 0);
}

TEST(TransactionTracker, ResetForgetsEverything) {
  TransactionTracker t;
  send(t, "QPB");
  t.copy_in_started();
  t.reset();
  EXPECT_TRUE(t.free());
  EXPECT_EQ(t.outstanding(), 0);
}

}  // namespace
}  // namespace pgcutover::proxy
