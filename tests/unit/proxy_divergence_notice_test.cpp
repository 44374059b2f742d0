// What a client meets through the proxy that differs from direct, told as a notice
// (proxy/session/divergence_notice.h): which notices, at which client_min_messages.
#include <gtest/gtest.h>

#include "protocol/framing.h"
#include "protocol/messages.h"
#include "proxy/session/divergence_notice.h"

namespace pgcutover::proxy {
namespace {

// The NoticeResponse messages of `out`, parsed (the header checked on the way).
std::vector<protocol::ErrorNotice> notices(const std::string& out, std::vector<std::string>& keep) {
  std::vector<protocol::ErrorNotice> found;
  std::size_t at = 0;
  while (at < out.size()) {
    EXPECT_EQ(out[at], 'N');
    auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(out[at + 1 + i]); };
    std::size_t len =
        (std::size_t{b(0)} << 24) | (std::size_t{b(1)} << 16) | (std::size_t{b(2)} << 8) | b(3);
    keep.push_back(out.substr(at + protocol::kHeaderSize, len - 4));
    at += 1 + len;
  }
  for (const auto& body : keep) {
    auto n = protocol::parse_error_notice(
        {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    EXPECT_TRUE(n.has_value());
    if (n) found.push_back(*n);
  }
  return found;
}

TEST(DivergenceNotice, LevelsFollowClientMinMessages) {
  EXPECT_TRUE(notice_reaches_client("NOTICE", ""));
  EXPECT_TRUE(notice_reaches_client("WARNING", ""));
  EXPECT_TRUE(notice_reaches_client("NOTICE", "DEBUG"));
  EXPECT_TRUE(notice_reaches_client("NOTICE", "log"));
  EXPECT_FALSE(notice_reaches_client("NOTICE", "warning"));
  EXPECT_TRUE(notice_reaches_client("WARNING", "Warning"));
  EXPECT_FALSE(notice_reaches_client("WARNING", "error"));
}

TEST(DivergenceNotice, OneWarningPerDivergence) {
  std::string out;
  append_divergence_notices(out, kDivergeOthersNotificationPid | kDivergePreparedStatementsView, 7,
                            7, "");
  std::vector<std::string> keep;
  auto n = notices(out, keep);
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].severity, "WARNING");
  EXPECT_EQ(n[0].sqlstate, "01000");
  EXPECT_NE(n[0].message.find("notifications from other clients"), std::string_view::npos);
  EXPECT_NE(n[1].message.find("pg_prepared_statements"), std::string_view::npos);
  EXPECT_FALSE(n[1].hint.empty());
}

TEST(DivergenceNotice, LoginPidNamesBothPidsAndOnlyWhenTheyDiffer) {
  std::string out;
  append_divergence_notices(out, kDivergeLoginPid, 1234, 1234, "");
  EXPECT_TRUE(out.empty());
  append_divergence_notices(out, kDivergeLoginPid, 1038736928, 4321, "");
  std::vector<std::string> keep;
  auto n = notices(out, keep);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].severity, "NOTICE");
  EXPECT_NE(n[0].message.find("pid 4321, not pid 1038736928"), std::string_view::npos);
  EXPECT_NE(n[0].hint.find("pg_terminate_backend(1038736928)"), std::string_view::npos);
}

TEST(DivergenceNotice, HiddenByClientMinMessages) {
  std::string out;
  unsigned all = kDivergeOthersNotificationPid | kDivergePreparedStatementsView | kDivergeLoginPid;
  append_divergence_notices(out, all, 1, 2, "error");
  EXPECT_TRUE(out.empty());
  append_divergence_notices(out, all, 1, 2, "warning");
  std::vector<std::string> keep;
  EXPECT_EQ(notices(out, keep).size(), 2u);  // the login pid's NOTICE is below WARNING
  out.clear();
  append_divergence_notices(out, kDivergeNone, 1, 2, "");
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace pgcutover::proxy
