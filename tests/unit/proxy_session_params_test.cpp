// proxy/session/session_params.*: which settings follow a client between server connections, how
// startup options are read, and the SET/RESET text sent to bring a server connection in line.
#include <gtest/gtest.h>

#include "proxy/pool/session_params.h"

namespace pgcutover::proxy {
namespace {

protocol::StartupPacket startup(std::vector<std::pair<std::string, std::string>> params) {
  protocol::StartupPacket p;
  p.params = std::move(params);
  return p;
}

// Every startup parameter PostgreSQL accepts is carried (JDBC's extra_float_digits too), and
// options "-c a=b" / "--a=b" items become settings; user/database/replication/_pq_ do not.
TEST(ProxySessionParams, StartupSettingsCarryEveryGuc) {
  ParamMap m = startup_settings(
      startup({{"user", "app"},
               {"database", "db"},
               {"extra_float_digits", "3"},
               {"application_name", "jdbc"},
               {"_pq_.x", "1"},
               {"options", "-c statement_timeout=5s --search-path=a\\ b -cTimeZone=UTC -X"}}));
  EXPECT_EQ(m.size(), 5u);
  EXPECT_EQ(m["extra_float_digits"], "3");
  EXPECT_EQ(m["application_name"], "jdbc");
  EXPECT_EQ(m["statement_timeout"], "5s");
  EXPECT_EQ(m["search_path"], "a b");
  EXPECT_EQ(m["timezone"], "UTC");  // GUC names are case-insensitive
  EXPECT_EQ(m.count("user"), 0u);
}

TEST(ProxySessionParams, TrackedReportedSettings) {
  EXPECT_TRUE(is_tracked_reported("TimeZone"));
  EXPECT_TRUE(is_tracked_reported("timezone"));
  EXPECT_TRUE(is_tracked_reported("application_name"));
  // The cutover fences the source with it: a sync must never undo that.
  EXPECT_FALSE(is_tracked_reported("default_transaction_read_only"));
  EXPECT_FALSE(is_tracked_reported("server_version"));
}

TEST(ProxySessionParams, SyncQuerySetsDifferencesAndResetsForeignSettings) {
  ParamMap desired{
      {"TimeZone", "Asia/Tokyo"}, {"application_name", "a"}, {"extra_float_digits", "3"}};
  ServerParams server;
  server.reported = {{"TimeZone", "UTC"}, {"application_name", "a"}, {"server_version", "15"}};
  server.overrides = {{"statement_timeout", "1s"}};
  std::vector<std::string> changed, reset;
  std::string sql = build_sync_query(desired, server, changed, reset);
  EXPECT_EQ(
      sql, "SET extra_float_digits TO E'3';SET TimeZone TO E'Asia/Tokyo';RESET statement_timeout;");
  EXPECT_EQ(changed, (std::vector<std::string>{"extra_float_digits", "TimeZone"}));
  EXPECT_EQ(reset, (std::vector<std::string>{"statement_timeout"}));
}

TEST(ProxySessionParams, NothingToDoWhenInLine) {
  ParamMap desired{{"timezone", "UTC"}};
  ServerParams server;
  server.reported = {{"TimeZone", "UTC"}};
  std::vector<std::string> changed, reset;
  EXPECT_EQ(build_sync_query(desired, server, changed, reset), "");
}

// Client-controlled values must not be able to inject SQL into the proxy's SET query.
TEST(ProxySessionParams, ValuesAreQuotedAndOddNamesSkipped) {
  EXPECT_EQ(quote_literal("it's a \\ test"), "E'it''s a \\\\ test'");
  ParamMap desired{{"application_name", "x'; DROP TABLE t; --"}, {"bad name;", "1"}, {"a.b", "c"}};
  ServerParams server;
  std::vector<std::string> changed, reset;
  std::string sql = build_sync_query(desired, server, changed, reset);
  EXPECT_EQ(sql, "SET a.b TO E'c';SET application_name TO E'x''; DROP TABLE t; --';");
  EXPECT_FALSE(is_plain_identifier("bad name;"));
  EXPECT_FALSE(is_plain_identifier("1abc"));
}

}  // namespace
}  // namespace pgcutover::proxy
