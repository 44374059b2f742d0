// proxy/session/session_state.*: the lexer-level classifier that decides when the proxy asks the
// server about session state (pinning, moves), and the helpers a move uses to replay
// prepared statements.
#include <gtest/gtest.h>

#include "proxy/session/session_state.h"

namespace pgcutover::proxy {
namespace {

// Each kind of state is recognised in its plain form, whatever the case.
TEST(ProxySessionState, ClassifiesEachKind) {
  EXPECT_EQ(classify_sql("LISTEN jobs"), kEffectListen | kEffectListenStart);
  EXPECT_EQ(classify_sql("unlisten *"), kEffectListen);
  EXPECT_EQ(classify_sql("SELECT pg_advisory_lock(42)"), kEffectAdvisory);
  EXPECT_EQ(classify_sql("select PG_TRY_ADVISORY_LOCK_SHARED(1, 2)"), kEffectAdvisory);
  EXPECT_EQ(classify_sql("SELECT pg_advisory_unlock_all()"), kEffectAdvisory);
  EXPECT_EQ(classify_sql("CREATE TEMP TABLE t (a int)"), kEffectTemp);
  EXPECT_EQ(classify_sql("create global temporary table t (a int)"), kEffectTemp);
  EXPECT_EQ(classify_sql("CREATE OR REPLACE TEMP VIEW v AS SELECT 1"), kEffectTemp);
  EXPECT_EQ(classify_sql("CREATE TABLE pg_temp.t (a int)"), kEffectTemp);
  EXPECT_EQ(classify_sql("SELECT 1 AS a INTO TEMP t"), kEffectTemp);
  EXPECT_EQ(classify_sql("DROP TABLE t"), kEffectTemp);
  EXPECT_EQ(classify_sql("DECLARE c CURSOR WITH HOLD FOR SELECT 1"), kEffectCursor);
  EXPECT_EQ(classify_sql("CLOSE c"), kEffectCursor);
  EXPECT_EQ(classify_sql("PREPARE p AS SELECT 1"), kEffectPrepare);
  EXPECT_EQ(classify_sql("DEALLOCATE ALL"), kEffectPrepare);
  EXPECT_EQ(classify_sql("SET statement_timeout = 5000"), kEffectSetting);
  EXPECT_EQ(classify_sql("SET SESSION work_mem TO '8MB'"), kEffectSetting);
  EXPECT_EQ(classify_sql("SET TIME ZONE 'UTC'"), kEffectSetting);
  EXPECT_EQ(classify_sql("RESET statement_timeout"), kEffectSetting);
  EXPECT_EQ(classify_sql("SELECT set_config('a.b', '1', false)"), kEffectSetting);
  EXPECT_EQ(classify_sql("SET ROLE admin"), kEffectRole);
  EXPECT_EQ(classify_sql("SET SESSION AUTHORIZATION bob"), kEffectRole);
  EXPECT_EQ(classify_sql("DISCARD ALL"), kEffectDiscard);
}

// Transaction-scoped variants leave nothing behind and are not flagged.
TEST(ProxySessionState, TransactionScopedIsNotSessionState) {
  EXPECT_EQ(classify_sql("SET LOCAL statement_timeout = 1"), kEffectNone);
  EXPECT_EQ(classify_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), kEffectNone);
  EXPECT_EQ(classify_sql("SET CONSTRAINTS ALL DEFERRED"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT pg_advisory_xact_lock(1)"), kEffectNone);
  EXPECT_EQ(classify_sql("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1"), kEffectNone);
  EXPECT_EQ(classify_sql("DECLARE c CURSOR FOR WITH x AS (SELECT 1) SELECT * FROM x"), kEffectNone);
  EXPECT_EQ(classify_sql("PREPARE TRANSACTION 'gid'"), kEffectNone);
  EXPECT_EQ(classify_sql("UPDATE t SET a = 1"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT * FROM listen_log WHERE temp > 3 OFFSET 2"), kEffectNone);
  EXPECT_EQ(classify_sql("CREATE TABLE t (temp int)"), kEffectNone);
}

// Keywords inside comments, literals and quoted identifiers are not statements.
TEST(ProxySessionState, IgnoresCommentsLiteralsAndQuotedIdentifiers) {
  EXPECT_EQ(classify_sql("-- LISTEN x\nSELECT 1"), kEffectNone);
  EXPECT_EQ(classify_sql("/* LISTEN /* nested */ still comment; LISTEN */ SELECT 1"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT 'pg_advisory_lock(1); LISTEN x'"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT E'it\\'s; LISTEN x'"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT 'it''s; LISTEN x'"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT $$; LISTEN x$$"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT $fn$ $$ ; LISTEN x $fn$"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT \"pg_advisory_lock\"(1)"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT 1 FROM \"LISTEN\""), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT U&'d\\0061t; LISTEN' "), kEffectNone);
  EXPECT_EQ(classify_sql("DECLARE c CURSOR WITH \"hold\" FOR SELECT 1"), kEffectNone);
  // A parameter is not a dollar quote.
  EXPECT_EQ(classify_sql("SELECT $1; LISTEN x") & kStateEffects, kEffectListen);
}

// Not state, but what differs through a pool (divergence_notice.h): a LISTEN, which UNLISTEN is
// not, and a read of pg_prepared_statements, qualified or not, in any case.
TEST(ProxySessionState, FindsWhatDiffersThroughAPool) {
  EXPECT_EQ(classify_sql("unlisten jobs") & kEffectListenStart, 0u);
  EXPECT_EQ(classify_sql("SELECT name FROM pg_prepared_statements"), kEffectPreparedView);
  EXPECT_EQ(classify_sql("select * from PG_CATALOG.Pg_Prepared_Statements where true"),
            kEffectPreparedView);
  EXPECT_EQ(classify_sql("SELECT 'pg_prepared_statements'"), kEffectNone);
  EXPECT_EQ(classify_sql("SELECT 1 FROM \"pg_prepared_statements\""), kEffectNone);
  EXPECT_EQ(kStateEffects & (kEffectListenStart | kEffectPreparedView), 0u);
}

// Every statement of a multi-statement query counts, comments between them too.
TEST(ProxySessionState, MultiStatementQueries) {
  EXPECT_EQ(classify_sql("BEGIN; SELECT 1; LISTEN a; COMMIT") & kStateEffects, kEffectListen);
  EXPECT_EQ(classify_sql("select 1;/*x*/set search_path = a, b ; create temp table t()"),
            kEffectSetting | kEffectTemp);
  EXPECT_EQ(classify_sql("SELECT 1;; ;"), kEffectNone);
  EXPECT_EQ(classify_sql(""), kEffectNone);
  // Unterminated literal: nothing after it counts (the server refuses the query).
  EXPECT_EQ(classify_sql("SELECT 'x; LISTEN y"), kEffectNone);
}

TEST(ProxySessionState, SplitStatements) {
  auto s = split_statements(" SELECT 1 ; -- c\n LISTEN \"a;b\";PREPARE p AS SELECT ';'; ");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], "SELECT 1");
  EXPECT_EQ(s[1], "LISTEN \"a;b\"");
  EXPECT_EQ(s[2], "PREPARE p AS SELECT ';'");
}

// pg_prepared_statements shows the whole query string of a PREPARE; a move replays only the
// statement that defined the name (folded unless quoted).
TEST(ProxySessionState, FindsThePrepareStatementByServerName) {
  std::string_view sql = "SELECT 1; PREPARE Foo(int) AS SELECT $1; PREPARE \"Bar\" AS SELECT 2";
  EXPECT_EQ(find_prepare_statement(sql, "foo"), "PREPARE Foo(int) AS SELECT $1");
  EXPECT_EQ(find_prepare_statement(sql, "Bar"), "PREPARE \"Bar\" AS SELECT 2");
  EXPECT_EQ(find_prepare_statement(sql, "bar"), "");
  EXPECT_EQ(find_prepare_statement(sql, "nope"), "");
}

TEST(ProxySessionState, SnapshotReasons) {
  SessionSnapshot s;
  EXPECT_FALSE(s.pins());
  EXPECT_EQ(s.reasons(), "");
  s.sql_prepared = 1;
  EXPECT_TRUE(s.pins());
  EXPECT_FALSE(s.unmovable());
  s.listen = 2;
  s.temp_objects = 1;
  EXPECT_TRUE(s.unmovable());
  EXPECT_EQ(s.reasons(), "LISTEN, temp table, SQL PREPARE");
}

// Replay: protocol statements by Parse + Sync (skippable in transaction mode, where the
// proxy re-prepares them lazily), SQL ones by their PREPARE text; one ReadyForQuery each.
TEST(ProxySessionState, PreparedReplay) {
  std::vector<PreparedOnServer> p(2);
  p[0] = {"s1", "SELECT $1", std::string("\0\0\0\x17", 4), 1, false};
  p[1] = {"q", "SELECT 0; PREPARE q AS SELECT 1", {}, 0, true};
  int ready = 0;
  std::string all = build_prepared_replay(p, false, ready);
  EXPECT_EQ(ready, 2);
  EXPECT_EQ(all[0], 'P');
  EXPECT_NE(all.find("PREPARE q AS SELECT 1"), std::string::npos);
  EXPECT_EQ(all.find("SELECT 0"), std::string::npos);
  std::string sql_only = build_prepared_replay(p, true, ready);
  EXPECT_EQ(ready, 1);
  EXPECT_EQ(sql_only[0], 'Q');
}

}  // namespace
}  // namespace pgcutover::proxy
