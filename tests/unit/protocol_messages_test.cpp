// Every message type in messages.h goes through builders -> decode_frame -> parse_* and
// comes back equal; malformed bodies (missing terminators, lying counts) give std::nullopt.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"

namespace pgcutover::protocol {
namespace {

using namespace std::string_literals;

// Frames exactly one message from `wire` and returns it; fails the test otherwise.
Frame one_frame(const std::string& wire, char type) {
  const FrameResult r = decode_frame(as_bytes(wire), Limits{});
  EXPECT_EQ(r.status, DecodeStatus::kMessage) << r.error;
  EXPECT_EQ(r.frame.size, wire.size());
  EXPECT_EQ(r.frame.type, type);
  return r.frame;
}

// Big-endian int16/int32 as bytes, for hand-built bodies.
std::string be16(int v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string be32(std::int64_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

ErrorSpec spec(std::string_view severity, std::string_view sqlstate, std::string_view message,
               std::string_view detail = {}, std::string_view hint = {}) {
  ErrorSpec e;
  e.severity = severity;
  e.sqlstate = sqlstate;
  e.message = message;
  e.detail = detail;
  e.hint = hint;
  return e;
}

// ---- frontend round trips ----

TEST(ProtocolMessages, QueryRoundTrip) {
  std::string w;
  append_query(w, "SELECT 'x'");
  const auto q = parse_query(one_frame(w, 'Q').body);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->sql, "SELECT 'x'");
}

TEST(ProtocolMessages, ParseRoundTripWithParameterTypes) {
  const std::string types = be32(23) + be32(25);
  std::string w;
  append_parse(w, "stmt_1", "SELECT $1::int, $2", 2, as_bytes(types));
  const auto p = parse_parse(one_frame(w, 'P').body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "stmt_1");
  EXPECT_EQ(p->query, "SELECT $1::int, $2");
  EXPECT_EQ(p->param_count, 2);
  EXPECT_EQ(as_chars(p->param_types), types);
}

TEST(ProtocolMessages, ParseUnnamedWithoutParameters) {
  std::string w;
  append_parse(w, "", "SELECT 1", 0, {});
  const auto p = parse_parse(one_frame(w, 'P').body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "");
  EXPECT_EQ(p->param_count, 0);
  EXPECT_TRUE(p->param_types.empty());
}

// Bind's tail is carried byte for byte: formats, a NULL, a value, result formats.
TEST(ProtocolMessages, BindRoundTripKeepsTheTail) {
  const std::string rest = be16(1) + be16(0) +                     // one format code: text
                           be16(2) + be32(-1) + be32(3) + "abc" +  // NULL, "abc"
                           be16(1) + be16(1);                      // results binary
  std::string w;
  append_bind(w, "portal", "stmt", as_bytes(rest));
  const auto b = parse_bind(one_frame(w, 'B').body);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->portal, "portal");
  EXPECT_EQ(b->statement, "stmt");
  EXPECT_EQ(as_chars(b->rest), rest);
}

TEST(ProtocolMessages, DescribeCloseExecuteRoundTrip) {
  std::string w;
  append_describe(w, 'S', "s1");
  auto d = parse_describe(one_frame(w, 'D').body);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, 'S');
  EXPECT_EQ(d->name, "s1");

  w.clear();
  append_close(w, 'P', "");
  auto c = parse_close(one_frame(w, 'C').body);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, 'P');
  EXPECT_EQ(c->name, "");

  w.clear();
  append_execute(w, "p", 100);
  auto e = parse_execute(one_frame(w, 'E').body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->portal, "p");
  EXPECT_EQ(e->max_rows, 100);
}

TEST(ProtocolMessages, PasswordAndSaslMessagesRoundTrip) {
  std::string w;
  append_password_message(w, "md5abcdef");
  auto pw = parse_password(one_frame(w, 'p').body);
  ASSERT_TRUE(pw);
  EXPECT_EQ(*pw, "md5abcdef");

  w.clear();
  append_sasl_initial_response(w, "SCRAM-SHA-256", "n,,n=,r=abc");
  auto s = parse_sasl_initial_response(one_frame(w, 'p').body);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(s->data, "n,,n=,r=abc");

  // SASLResponse is bare data: the body is the message.
  w.clear();
  append_sasl_response(w, "c=biws,r=abc,p=xyz");
  EXPECT_EQ(as_chars(one_frame(w, 'p').body), "c=biws,r=abc,p=xyz");
}

// Length -1 means "no initial response".
TEST(ProtocolMessages, SaslInitialResponseWithoutData) {
  const std::string body = "SCRAM-SHA-256\0"s + be32(-1);
  auto s = parse_sasl_initial_response(as_bytes(body));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->data, "");
  EXPECT_FALSE(parse_sasl_initial_response(as_bytes("SCRAM-SHA-256\0"s + be32(-2))));
  EXPECT_FALSE(parse_sasl_initial_response(as_bytes("SCRAM-SHA-256\0"s + be32(5) + "abcd")));
  EXPECT_FALSE(parse_sasl_initial_response(as_bytes("SCRAM-SHA-256\0"s + be32(3) + "abcd")));
}

TEST(ProtocolMessages, EmptyBodyMessages) {
  struct Case {
    void (*append)(std::string&);
    char type;
  };
  for (const Case& c :
       {Case{append_sync, 'S'}, Case{append_flush, 'H'}, Case{append_terminate, 'X'},
        Case{append_parse_complete, '1'}, Case{append_bind_complete, '2'},
        Case{append_close_complete, '3'}, Case{append_empty_query_response, 'I'}}) {
    std::string w;
    c.append(w);
    EXPECT_EQ(w.size(), 5u);
    EXPECT_TRUE(one_frame(w, c.type).body.empty());
  }
}

// ---- backend round trips ----

TEST(ProtocolMessages, ReadyForQueryRoundTrip) {
  for (char status : {'I', 'T', 'E'}) {
    std::string w;
    append_ready_for_query(w, status);
    auto z = parse_ready_for_query(one_frame(w, 'Z').body);
    ASSERT_TRUE(z);
    EXPECT_EQ(z->status, status);
  }
  // An unknown status must never read as idle.
  EXPECT_FALSE(parse_ready_for_query(as_bytes("X")));
  EXPECT_FALSE(parse_ready_for_query(as_bytes("")));
  EXPECT_FALSE(parse_ready_for_query(as_bytes("II")));
}

TEST(ProtocolMessages, ParameterStatusRoundTrip) {
  std::string w;
  append_parameter_status(w, "TimeZone", "UTC");
  auto s = parse_parameter_status(one_frame(w, 'S').body);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, "TimeZone");
  EXPECT_EQ(s->value, "UTC");
}

TEST(ProtocolMessages, BackendKeyDataRoundTrip) {
  std::string w;
  append_backend_key_data(w, 31337, -42);
  auto k = parse_backend_key_data(one_frame(w, 'K').body);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->pid, 31337);
  EXPECT_EQ(k->key, -42);
  EXPECT_FALSE(parse_backend_key_data(as_bytes(be32(1))));
  EXPECT_FALSE(parse_backend_key_data(as_bytes(be32(1) + be32(2) + "x")));
}

TEST(ProtocolMessages, AuthenticationRoundTrips) {
  std::string w;
  append_auth_ok(w);
  auto a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kOk);
  EXPECT_TRUE(a->data.empty());

  w.clear();
  append_auth_cleartext(w);
  a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kCleartextPassword);

  const std::uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
  w.clear();
  append_auth_md5(w, salt);
  a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kMd5Password);
  EXPECT_EQ(as_chars(a->data), "\xde\xad\xbe\xef"s);

  w.clear();
  append_auth_sasl(w, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kSasl);
  auto mechs = parse_sasl_mechanisms(a->data);
  ASSERT_TRUE(mechs);
  EXPECT_EQ(*mechs, (std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));

  w.clear();
  append_auth_sasl_continue(w, "r=abc,s=c2FsdA==,i=4096");
  a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kSaslContinue);
  EXPECT_EQ(as_chars(a->data), "r=abc,s=c2FsdA==,i=4096");

  w.clear();
  append_auth_sasl_final(w, "v=xyz");
  a = parse_authentication(one_frame(w, 'R').body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, AuthCode::kSaslFinal);
  EXPECT_EQ(as_chars(a->data), "v=xyz");
}

// Fixed-size authentication bodies are checked; unknown codes (GSS = 7) pass through.
TEST(ProtocolMessages, AuthenticationMalformed) {
  EXPECT_FALSE(parse_authentication(as_bytes("\0\0"s)));
  EXPECT_FALSE(parse_authentication(as_bytes(be32(0) + "x")));
  EXPECT_FALSE(parse_authentication(as_bytes(be32(5) + "abc")));
  EXPECT_FALSE(parse_authentication(as_bytes(be32(10) + "SCRAM-SHA-256\0"s)));
  auto gss = parse_authentication(as_bytes(be32(7)));
  ASSERT_TRUE(gss);
  EXPECT_EQ(static_cast<int>(gss->code), 7);
}

TEST(ProtocolMessages, SaslMechanismListMalformed) {
  EXPECT_FALSE(parse_sasl_mechanisms(as_bytes("")));
  EXPECT_FALSE(parse_sasl_mechanisms(as_bytes("SCRAM-SHA-256")));
  EXPECT_FALSE(parse_sasl_mechanisms(as_bytes("A\0\0junk"s)));
  auto empty = parse_sasl_mechanisms(as_bytes("\0"s));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

// NotificationResponse has no builder (the proxy only forwards it): built by hand.
TEST(ProtocolMessages, NotificationRoundTrip) {
  std::string w;
  MessageWriter(w, 'A').int32(777).cstring("jobs").cstring("{\"id\":1}").end();
  auto n = parse_notification(one_frame(w, 'A').body);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->pid, 777);
  EXPECT_EQ(n->channel, "jobs");
  EXPECT_EQ(n->payload, "{\"id\":1}");
}

TEST(ProtocolMessages, DataRowValuesAndNull) {
  std::string w;
  MessageWriter(w, 'D').int16(3).int32(2).raw("42").int32(-1).int32(0).end();
  auto row = parse_data_row(one_frame(w, 'D').body);
  ASSERT_TRUE(row);
  ASSERT_EQ(row->size(), 3u);
  EXPECT_EQ((*row)[0], "42");
  EXPECT_FALSE((*row)[1]);
  EXPECT_EQ((*row)[2], "");
  // A length past the end, a negative length other than -1, or bytes left over: malformed.
  EXPECT_FALSE(parse_data_row(as_bytes(be16(1) + be32(5) + "ab")));
  EXPECT_FALSE(parse_data_row(as_bytes(be16(1) + be32(-2))));
  EXPECT_FALSE(parse_data_row(as_bytes(be16(0) + "x")));
}

TEST(ProtocolMessages, CommandCompleteRoundTrip) {
  std::string w;
  append_command_complete(w, "INSERT 0 5");
  auto c = parse_command_complete(one_frame(w, 'C').body);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tag, "INSERT 0 5");
}

TEST(ProtocolMessages, ErrorAndNoticeRoundTrip) {
  std::string w;
  append_error_response(w, spec("FATAL", "28P01", "password authentication failed", "d", "h"));
  auto e = parse_error_notice(one_frame(w, 'E').body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "FATAL");
  EXPECT_EQ(e->sqlstate, "28P01");
  EXPECT_EQ(e->message, "password authentication failed");
  EXPECT_EQ(e->detail, "d");
  EXPECT_EQ(e->hint, "h");
  ASSERT_EQ(e->fields.size(), 6u);
  EXPECT_EQ(e->fields[0].code, 'S');

  w.clear();
  append_notice_response(w, spec("NOTICE", "00000", "hello"));
  e = parse_error_notice(one_frame(w, 'N').body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "NOTICE");
  EXPECT_EQ(e->detail, "");
  EXPECT_EQ(e->fields.size(), 4u);
}

// 'V' (never localized) wins over 'S'; unknown field codes are kept.
TEST(ProtocolMessages, ErrorNoticePrefersNonLocalizedSeverity) {
  const std::string body = "SFEHLER\0VERROR\0C42P01\0Mno table\0Zfuture\0\0"s;
  auto e = parse_error_notice(as_bytes(body));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "ERROR");
  ASSERT_EQ(e->fields.size(), 5u);
  EXPECT_EQ(e->fields[4].code, 'Z');
  EXPECT_EQ(e->fields[4].value, "future");
  // Old servers send only 'S'.
  const std::string old_server = "SERROR\0\0"s;  // views point into it: keep it alive
  e = parse_error_notice(as_bytes(old_server));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->severity, "ERROR");
}

TEST(ProtocolMessages, NegotiateProtocolVersionBytes) {
  std::string w;
  append_negotiate_protocol_version(w, 0, {"_pq_.foo"});
  const Frame f = one_frame(w, 'v');
  EXPECT_EQ(as_chars(f.body), be32(0) + be32(1) + "_pq_.foo\0"s);
}

// Builders cannot emit a string with a NUL inside: it is cut at the NUL so the framing of
// the fields after it stays intact.
TEST(ProtocolMessages, EmbeddedNulIsCutNotSmuggled) {
  std::string w;
  const std::string message = "role \"x\0Mfake\" does not exist"s;
  append_error_response(w, spec("ERROR", "28000", message));
  auto e = parse_error_notice(one_frame(w, 'E').body);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "role \"x");
  EXPECT_EQ(e->fields.size(), 4u);
}

// ---- malformed bodies ----

// Truncated strings (no terminator) give nullopt in every parser that reads one.
TEST(ProtocolMessages, TruncatedStringsAreRejected) {
  EXPECT_FALSE(parse_query(as_bytes("SELECT 1")));
  EXPECT_FALSE(parse_query(as_bytes("")));
  EXPECT_FALSE(parse_parse(as_bytes("name\0SELECT"s)));
  EXPECT_FALSE(parse_parse(as_bytes("name"s)));
  EXPECT_FALSE(parse_bind(as_bytes("portal\0stmt"s)));
  EXPECT_FALSE(parse_describe(as_bytes("Sname"s)));
  EXPECT_FALSE(parse_close(as_bytes("P"s)));
  EXPECT_FALSE(parse_execute(as_bytes("portal"s)));
  EXPECT_FALSE(parse_password(as_bytes("secret"s)));
  EXPECT_FALSE(parse_sasl_initial_response(as_bytes("SCRAM-SHA-256"s)));
  EXPECT_FALSE(parse_parameter_status(as_bytes("TimeZone\0UTC"s)));
  EXPECT_FALSE(parse_notification(as_bytes(be32(1) + "chan\0payload")));
  EXPECT_FALSE(parse_command_complete(as_bytes("SELECT 1"s)));
  EXPECT_FALSE(parse_error_notice(as_bytes("SERROR"s)));
  EXPECT_FALSE(parse_error_notice(as_bytes("SERROR\0"s)));  // no final zero code
}

// Trailing bytes after the last field are malformed (PostgreSQL's pq_getmsgend).
TEST(ProtocolMessages, TrailingBytesAreRejected) {
  EXPECT_FALSE(parse_query(as_bytes("SELECT 1\0x"s)));
  EXPECT_FALSE(parse_execute(as_bytes("\0"s + be32(0) + "x")));
  EXPECT_FALSE(parse_password(as_bytes("a\0b\0"s)));
  EXPECT_FALSE(parse_command_complete(as_bytes("A\0B\0"s)));
  EXPECT_FALSE(parse_error_notice(as_bytes("SERROR\0\0x"s)));
}

// Parse's parameter count must match the OIDs that follow.
TEST(ProtocolMessages, ParseCountMustMatchTypes) {
  EXPECT_FALSE(parse_parse(as_bytes("\0SELECT $1\0"s + be16(2) + be32(23))));
  EXPECT_FALSE(parse_parse(as_bytes("\0SELECT $1\0"s + be16(1) + be32(23) + "x")));
  EXPECT_FALSE(parse_parse(as_bytes("\0SELECT $1\0"s + be16(0xffff))));
  EXPECT_FALSE(parse_parse(as_bytes("\0SELECT $1\0"s + "\0")));
}

// Bind with counts that overrun the body, or negative counts, is malformed.
TEST(ProtocolMessages, BindCountsThatOverrun) {
  const std::string head = "\0s\0"s;
  auto bind = [&](const std::string& tail) { return parse_bind(as_bytes(head + tail)); };
  EXPECT_TRUE(bind(be16(0) + be16(0) + be16(0)));
  EXPECT_FALSE(bind(""));
  EXPECT_FALSE(bind(be16(3) + be16(0)));                                // 3 formats, 1 there
  EXPECT_FALSE(bind(be16(-1) + be16(0) + be16(0)));                     // negative format count
  EXPECT_FALSE(bind(be16(0) + be16(2) + be32(1) + "a" + be16(0)));      // 2 params, 1 there
  EXPECT_FALSE(bind(be16(0) + be16(1) + be32(100) + "abc" + be16(0)));  // value overruns
  EXPECT_FALSE(bind(be16(0) + be16(1) + be32(-2) + be16(0)));           // length below -1
  EXPECT_FALSE(bind(be16(0) + be16(-5) + be16(0)));                     // negative params
  EXPECT_FALSE(bind(be16(0) + be16(0) + be16(4) + be16(1)));            // 4 result formats, 1
  EXPECT_FALSE(bind(be16(0) + be16(0)));                                // result count missing
  EXPECT_FALSE(bind(be16(0) + be16(0) + be16(0) + "x"));                // trailing byte
  EXPECT_FALSE(bind(be16(0) + be16(1) + be32(0x7fffffff) + be16(0)));   // huge value length
  EXPECT_TRUE(bind(be16(0) + be16(1) + be32(0) + be16(0)));             // empty value is fine
}

// Describe/Close must name a statement or a portal; the proxy tracks which.
TEST(ProtocolMessages, DescribeAndCloseKindIsChecked) {
  EXPECT_FALSE(parse_describe(as_bytes("Xname\0"s)));
  EXPECT_FALSE(parse_close(as_bytes("\0name\0"s)));
  EXPECT_FALSE(parse_describe(as_bytes(""s)));
}

}  // namespace
}  // namespace pgcutover::protocol
