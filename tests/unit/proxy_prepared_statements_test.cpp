// Transaction mode's prepared-statement tracking, the parts that are pure logic
// (proxy/session/prepared_statements.h): SQL DEALLOCATE recognition, the Parse/Close/Sync batches
// the proxy answers without a server connection, and what an error in a pipeline undoes.
#include "proxy/session/prepared_statements.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"

namespace pgcutover::proxy {
namespace {

using Kind = PendingResponse::Kind;

// The backend messages in `wire`, as their type letters.
std::string types_of(const std::string& wire) {
  std::string out;
  protocol::Limits limits;
  protocol::Bytes in = protocol::as_bytes(wire);
  while (!in.empty()) {
    auto f = protocol::decode_frame(in, limits);
    if (f.status != protocol::DecodeStatus::kMessage) return out + "?";
    out.push_back(f.frame.type);
    in = in.subspan(f.frame.size);
  }
  return out;
}

TEST(SqlDeallocate, NamesTheStatementAsPostgresFoldsIt) {
  EXPECT_EQ(sql_deallocate_target("DEALLOCATE _pg3_5"), "_pg3_5");  // psycopg 3
  EXPECT_EQ(sql_deallocate_target("DEALLOCATE a12"), "a12");        // ActiveRecord
  EXPECT_EQ(sql_deallocate_target("  deallocate prepare S_1 ;\n"), "s_1");
  EXPECT_EQ(sql_deallocate_target("DEALLOCATE \"S_1\""), "S_1");
  EXPECT_EQ(sql_deallocate_target("DEALLOCATE \"a\"\"b\";"), "a\"b");
  EXPECT_EQ(sql_deallocate_target("DEALLOCATE prepare"), "prepare");  // a statement named so
}

TEST(SqlDeallocate, LeavesEverythingElseToTheServer) {
  EXPECT_FALSE(sql_deallocate_target("DEALLOCATE ALL"));
  EXPECT_FALSE(sql_deallocate_target("deallocate prepare all;"));
  EXPECT_FALSE(sql_deallocate_target("DEALLOCATE a; SELECT 1"));
  EXPECT_FALSE(sql_deallocate_target("DEALLOCATE"));
  EXPECT_FALSE(sql_deallocate_target("DEALLOCATE \"unterminated"));
  EXPECT_FALSE(sql_deallocate_target("DEALLOCATE 1abc"));
  EXPECT_FALSE(sql_deallocate_target("SELECT 'DEALLOCATE a'"));
  EXPECT_FALSE(sql_deallocate_target("\"DEALLOCATE\" a"));
}

TEST(AnswerWithoutServer, ParseAndSyncIsAnsweredAndRecorded) {
  // libpq's PQprepare: Parse + Sync.
  std::string in;
  std::string types("\x00\x00\x00\x17", 4);  // int4
  protocol::append_parse(in, "P_0", "SELECT $1", 1, protocol::as_bytes(types));
  protocol::append_sync(in);
  in += "tail";  // the next batch, not consumed
  ClientStatements st;
  auto a = answer_without_server(protocol::as_bytes(in), st, protocol::Limits{});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->consumed, in.size() - 4);
  EXPECT_EQ(types_of(a->reply), "1Z");
  EXPECT_EQ(a->reply.back(), 'I');
  ASSERT_EQ(st.count("P_0"), 1u);
  EXPECT_EQ(st["P_0"].query, "SELECT $1");
  EXPECT_EQ(st["P_0"].param_count, 1);
  EXPECT_EQ(st["P_0"].param_types, types);
  EXPECT_EQ(st["P_0"].server_name, server_statement_name("SELECT $1", types));
}

TEST(AnswerWithoutServer, SeveralParsesClosesAndABareSync) {
  std::string in;
  protocol::append_parse(in, "a", "SELECT 1", 0, {});
  protocol::append_close(in, 'S', "old");
  protocol::append_close(in, 'P', "portal");
  protocol::append_parse(in, "b", "SELECT 2", 0, {});
  protocol::append_sync(in);
  ClientStatements st;
  st["old"] = StatementDef{"pgc_x", "SELECT 0", 0, ""};
  auto a = answer_without_server(protocol::as_bytes(in), st, protocol::Limits{});
  ASSERT_TRUE(a);
  EXPECT_EQ(types_of(a->reply), "1331Z");
  EXPECT_EQ(st.count("a") + st.count("b"), 2u);
  EXPECT_EQ(st.count("old"), 0u);

  std::string sync;
  protocol::append_sync(sync);
  auto b = answer_without_server(protocol::as_bytes(sync), st, protocol::Limits{});
  ASSERT_TRUE(b);
  EXPECT_EQ(types_of(b->reply), "Z");
}

TEST(AnswerWithoutServer, AnythingElseNeedsTheServerAndChangesNothing) {
  ClientStatements st;
  auto refused = [&](const std::string& in) {
    return !answer_without_server(protocol::as_bytes(in), st, protocol::Limits{}) && st.empty();
  };
  std::string no_sync;
  protocol::append_parse(no_sync, "a", "SELECT 1", 0, {});
  EXPECT_TRUE(refused(no_sync));  // the Sync has not arrived (or a Flush will come)

  std::string flush = no_sync;
  protocol::append_flush(flush);
  protocol::append_sync(flush);
  EXPECT_TRUE(refused(flush));

  std::string unnamed;
  protocol::append_parse(unnamed, "", "SELECT 1", 0, {});
  protocol::append_sync(unnamed);
  EXPECT_TRUE(refused(unnamed));  // the unnamed statement lives on one server connection

  std::string describe = no_sync;
  protocol::append_describe(describe, 'S', "a");  // needs the server's RowDescription
  protocol::append_sync(describe);
  EXPECT_TRUE(refused(describe));

  std::string bind = no_sync;
  protocol::append_bind(bind, "", "a", protocol::as_bytes(std::string(6, '\0')));
  protocol::append_sync(bind);
  EXPECT_TRUE(refused(bind));

  std::string query;
  protocol::append_query(query, "SELECT 1");
  EXPECT_TRUE(refused(query));

  std::string partial;
  protocol::append_parse(partial, "a", "SELECT 1", 0, {});
  protocol::append_sync(partial);
  partial.pop_back();  // the Sync is cut short
  EXPECT_TRUE(refused(partial));

  std::string garbage = no_sync;
  garbage += std::string("P\x00\x00\x00\x05", 5);  // a Parse with no body at all
  protocol::append_sync(garbage);
  EXPECT_TRUE(refused(garbage));
}

TEST(FailPendingToSync, UndoesWhatTheSkippedMessagesWouldHaveDone) {
  PreparedLru lru;
  ClientStatements st;
  st["s1"] = StatementDef{"pgc_1", "SELECT 1", 0, ""};
  st["s2"] = StatementDef{"pgc_2", "SELECT 2", 0, ""};
  st["s3"] = StatementDef{"pgc_3", "SELECT 3", 0, ""};
  lru.insert("pgc_1");  // prepared on send
  lru.insert("pgc_3");
  ResponseQueue q;
  q.push_back({Kind::kExecute});                           // the failing message
  q.push_back({Kind::kClose, true, "pgc_old", {}});        // an eviction the server skips
  q.push_back({Kind::kParse, false, "pgc_1", "s1"});       // the client's Parse, skipped
  q.push_back({Kind::kSynthParse, false, "pgc_3", "s3"});  // a cache hit the client loses too
  q.push_back({Kind::kParse, true, "pgc_2", {}});          // the proxy's own re-Parse, skipped
  q.push_back({Kind::kSync});
  q.push_back({Kind::kParse, false, "pgc_9", "s9"});  // after the Sync: untouched
  EXPECT_FALSE(fail_pending_to_sync(q, lru, st));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front().kind, Kind::kSync);
  EXPECT_TRUE(lru.contains("pgc_old"));  // the eviction never happened
  EXPECT_FALSE(lru.contains("pgc_1"));   // nor did the Parse
  EXPECT_TRUE(lru.contains("pgc_3"));    // the server statement of a cache hit stays
  EXPECT_EQ(st.count("s1"), 0u);
  EXPECT_EQ(st.count("s3"), 0u);
  EXPECT_EQ(st.count("s2"), 1u);  // the client never asked for that Parse
}

TEST(FailPendingToSync, KeepsAStatementTheClientRedefinedMeanwhile) {
  PreparedLru lru;
  ClientStatements st;
  st["s"] = StatementDef{"pgc_new", "SELECT 2", 0, ""};
  ResponseQueue q;
  q.push_back({Kind::kBind});
  q.push_back({Kind::kParse, false, "pgc_old", "s"});  // an older definition of "s"
  EXPECT_TRUE(fail_pending_to_sync(q, lru, st));       // no Sync yet: the server skips on
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(st.count("s"), 1u);
}

TEST(ResponseQueue, KeepsOrderThroughALongPipelineAndPushFront) {
  ResponseQueue q;
  EXPECT_TRUE(q.empty());
  // A pipeline that never drains: the dead head is compacted away, order stays.
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 500; ++round) {
    for (int i = 0; i < 3; ++i) q.push_back({Kind::kParse, false, std::to_string(next_in++), {}});
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(q.front().server_name, std::to_string(next_out++));
      q.pop_front();
    }
  }
  EXPECT_EQ(q.size(), static_cast<std::size_t>(next_in - next_out));
  q.push_front({Kind::kSynthClose, false, "first", {}});  // into the dead head
  EXPECT_EQ(q.front().server_name, "first");
  q.pop_front();
  EXPECT_EQ(q.front().server_name, std::to_string(next_out));
  EXPECT_EQ(q.back().server_name, std::to_string(next_in - 1));
  while (!q.empty()) {
    ASSERT_EQ(q.front().server_name, std::to_string(next_out++));
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
  q.push_front({Kind::kSync});  // into an empty queue
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.back().kind, Kind::kSync);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST(PreparedLru, EvictsLeastRecentlyUsed) {
  PreparedLru lru;
  lru.insert("a");
  lru.insert("b");
  lru.insert("c");
  EXPECT_TRUE(lru.touch("a"));
  EXPECT_EQ(lru.oldest(), "b");
  lru.erase("b");
  EXPECT_EQ(lru.oldest(), "c");
  EXPECT_FALSE(lru.touch("b"));
  EXPECT_EQ(lru.size(), 2u);
}

}  // namespace
}  // namespace pgcutover::proxy
