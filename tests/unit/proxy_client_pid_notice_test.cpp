// The server's warning for pg_terminate_backend / pg_cancel_backend of a pid it does not have,
// explained when that pid is one the proxy gave a client (proxy/session/client_pid_notice.h).
#include <gtest/gtest.h>

#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"
#include "proxy/session/client_pid_notice.h"

namespace pgcutover::proxy {
namespace {

// A NoticeResponse body as the server sends it.
std::string notice_body(std::string_view sqlstate, std::string_view message) {
  std::string whole;
  protocol::append_notice_response(
      whole,
      {.severity = "WARNING", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return whole.substr(protocol::kHeaderSize);
}

TEST(ClientPidNotice, FindsThePidOfTheServersWarning) {
  std::string b = notice_body("01000", "PID 1038736928 is not a PostgreSQL backend process");
  EXPECT_EQ(unknown_backend_pid(protocol::as_bytes(b)), 1038736928);
  EXPECT_FALSE(unknown_backend_pid(
      protocol::as_bytes(notice_body("01000", "PID x is not a PostgreSQL backend process"))));
  EXPECT_FALSE(unknown_backend_pid(protocol::as_bytes(
      notice_body("01000", "PID 99999999999 is not a PostgreSQL backend process"))));
  EXPECT_FALSE(unknown_backend_pid(
      protocol::as_bytes(notice_body("42000", "PID 12 is not a PostgreSQL backend process"))));
  EXPECT_FALSE(unknown_backend_pid(protocol::as_bytes(notice_body("01000", "some other warning"))));
}

TEST(ClientPidNotice, ExplainsOnlyThePidsTheProxyGave) {
  std::string b = notice_body("01000", "PID 1038736928 is not a PostgreSQL backend process");
  std::string out;
  EXPECT_FALSE(explain_client_pid_notice(
      protocol::as_bytes(b), [](std::int32_t) { return false; }, out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(explain_client_pid_notice(
      protocol::as_bytes(b), [](std::int32_t pid) { return pid == 1038736928; }, out));
  ASSERT_EQ(out[0], 'N');
  std::string body = out.substr(protocol::kHeaderSize);  // the views below point into it
  auto n = protocol::parse_error_notice(protocol::as_bytes(body));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->sqlstate, "01000");
  EXPECT_EQ(n->message, "PID 1038736928 is not a PostgreSQL backend process");
  EXPECT_NE(n->hint.find("1038736928 is the pid the proxy gave a client session"),
            std::string_view::npos)
      << n->hint;
}

}  // namespace
}  // namespace pgcutover::proxy
