// proxy/session/read_only_error.*: in read-only mode a refused write names the migration, keeps
// SQLSTATE 25006 and the server's own text (as the detail); other errors are left alone.
#include <gtest/gtest.h>

#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/session/read_only_error.h"

namespace pgcutover::proxy {
namespace {

std::string error_body(std::string_view sqlstate, std::string_view message) {
  std::string msg;
  protocol::append_error_response(
      msg,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return msg.substr(protocol::kHeaderSize);  // type byte and length off: the body
}

TEST(ProxyReadOnlyError, RewritesTheMessageAndKeepsTheSqlstate) {
  std::string body = error_body("25006", "cannot execute INSERT in a read-only transaction");
  std::string out;
  ASSERT_TRUE(rewrite_read_only_error(protocol::as_bytes(body), out));
  ASSERT_EQ(out[0], 'E');
  auto e = protocol::parse_error_notice(protocol::as_bytes(std::string_view(out).substr(5)));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate, "25006");
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_NE(e->message.find("migration is in progress"), std::string_view::npos);
  EXPECT_EQ(e->detail, "cannot execute INSERT in a read-only transaction");
  EXPECT_FALSE(e->hint.empty());
}

TEST(ProxyReadOnlyError, LeavesOtherErrorsAlone) {
  std::string body = error_body("23505", "duplicate key value violates unique constraint");
  std::string out;
  EXPECT_FALSE(rewrite_read_only_error(protocol::as_bytes(body), out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(rewrite_read_only_error(protocol::as_bytes(std::string("garbage")), out));
}

}  // namespace
}  // namespace pgcutover::proxy
