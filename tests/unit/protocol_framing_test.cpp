// Byte-level tests of decode_frame and decode_startup: splits at every offset, several
// messages in one read, lengths that lie, and every startup-phase packet.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "protocol/builders.h"
#include "protocol/framing.h"

namespace pgcutover::protocol {
namespace {

using namespace std::string_literals;

struct Decoded {
  char type;
  std::string body;
  bool operator==(const Decoded&) const = default;
};

// Feeds `chunks` to decode_frame the way a socket read loop would: append what arrived, take
// every whole message off the front, and keep the rest. Checks the kNeedMore contract on the way.
std::vector<Decoded> decode_chunks(const std::vector<std::string>& chunks, bool* error = nullptr) {
  std::vector<Decoded> out;
  std::string buf;
  for (const std::string& c : chunks) {
    buf += c;
    for (;;) {
      FrameResult r = decode_frame(as_bytes(buf), Limits{});
      if (r.status == DecodeStatus::kNeedMore) {
        EXPECT_GT(r.needed, buf.size()) << "kNeedMore must ask for more than is buffered";
        EXPECT_EQ(r.frame.size, 0u) << "kNeedMore consumes nothing";
        break;
      }
      if (r.status == DecodeStatus::kError) {
        if (error) *error = true;
        return out;
      }
      EXPECT_LE(r.frame.size, buf.size());
      EXPECT_EQ(r.frame.size, kHeaderSize + r.frame.body.size());
      out.push_back({r.frame.type, std::string(as_chars(r.frame.body))});
      buf.erase(0, r.frame.size);
    }
  }
  EXPECT_TRUE(buf.empty()) << "bytes left over after the last message";
  return out;
}

std::string sample_stream() {
  std::string s;
  append_query(s, "SELECT 1");
  append_parse(s, "s1", "SELECT $1", 0, {});
  append_bind(s, "", "s1", as_bytes("\0\0\0\0\0\0"s));
  append_execute(s, "", 0);
  append_sync(s);
  append_ready_for_query(s, 'I');
  ErrorSpec e;
  e.severity = "FATAL";
  e.sqlstate = "28P01";
  e.message = "no";
  append_error_response(s, e);
  append_terminate(s);
  return s;
}

// The reference: the whole stream in one read.
std::vector<Decoded> sample_messages() {
  return decode_chunks({sample_stream()});
}

// Golden bytes: the header is type + big-endian length that counts itself, not the type.
TEST(ProtocolFraming, HeaderIsTypeThenBigEndianLengthCountingItself) {
  std::string s;
  append_ready_for_query(s, 'T');
  EXPECT_EQ(s, "Z\x00\x00\x00\x05T"s);
  s.clear();
  append_query(s, "x");
  EXPECT_EQ(s, "Q\x00\x00\x00\x06x\x00"s);
}

// Several messages in one buffer come out one at a time, each with its own size.
TEST(ProtocolFraming, SeveralMessagesInOneRead) {
  const auto msgs = sample_messages();
  ASSERT_EQ(msgs.size(), 8u);
  EXPECT_EQ(msgs[0].type, 'Q');
  EXPECT_EQ(msgs[0].body, "SELECT 1\0"s);
  EXPECT_EQ(msgs[4].type, 'S');
  EXPECT_EQ(msgs[4].body, "");
  EXPECT_EQ(msgs[5].type, 'Z');
  EXPECT_EQ(msgs[7].type, 'X');
}

// Two messages back to back: the first result leaves the second untouched.
TEST(ProtocolFraming, TwoMessagesInOneBuffer) {
  std::string s;
  append_sync(s);
  append_query(s, "SELECT 2");
  FrameResult r = decode_frame(as_bytes(s), Limits{});
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.type, 'S');
  EXPECT_EQ(r.frame.size, 5u);
  r = decode_frame(as_bytes(s).subspan(5), Limits{});
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.type, 'Q');
  EXPECT_EQ(as_chars(r.frame.body), "SELECT 2\0"s);
  EXPECT_EQ(r.frame.size, s.size() - 5);
}

// A stream split into two reads at every offset decodes to the same sequence.
TEST(ProtocolFraming, SplitAtEveryOffsetDecodesTheSame) {
  const std::string s = sample_stream();
  const auto expected = sample_messages();
  for (std::size_t k = 0; k <= s.size(); ++k) {
    EXPECT_EQ(decode_chunks({s.substr(0, k), s.substr(k)}), expected) << "split at " << k;
  }
}

// The same stream arriving one byte per read.
TEST(ProtocolFraming, OneByteAtATimeDecodesTheSame) {
  const std::string s = sample_stream();
  std::vector<std::string> chunks;
  for (char c : s) chunks.emplace_back(1, c);
  EXPECT_EQ(decode_chunks(chunks), sample_messages());
}

// Three-way splits (every pair of offsets) over a shorter stream.
TEST(ProtocolFraming, SplitAtEveryPairOfOffsets) {
  std::string s;
  append_parse_complete(s);
  append_bind_complete(s);
  append_command_complete(s, "SELECT 1");
  append_ready_for_query(s, 'I');
  const auto expected = decode_chunks({s});
  ASSERT_EQ(expected.size(), 4u);
  for (std::size_t i = 0; i <= s.size(); ++i) {
    for (std::size_t j = i; j <= s.size(); ++j) {
      ASSERT_EQ(decode_chunks({s.substr(0, i), s.substr(i, j - i), s.substr(j)}), expected)
          << i << "," << j;
    }
  }
}

// kNeedMore asks for the header first, then for exactly the whole message.
TEST(ProtocolFraming, NeedMoreReportsTotalSize) {
  std::string s;
  append_query(s, "SELECT 1");
  FrameResult r = decode_frame(as_bytes(s).first(3), Limits{});
  EXPECT_EQ(r.status, DecodeStatus::kNeedMore);
  EXPECT_EQ(r.needed, kHeaderSize);
  r = decode_frame(as_bytes(s).first(7), Limits{});
  EXPECT_EQ(r.status, DecodeStatus::kNeedMore);
  EXPECT_EQ(r.needed, s.size());
  r = decode_frame(Bytes{}, Limits{});
  EXPECT_EQ(r.status, DecodeStatus::kNeedMore);
}

// A declared length under 4 cannot cover itself: error, for every such value.
TEST(ProtocolFraming, LengthBelowFourIsAnError) {
  for (int len = 0; len < 4; ++len) {
    const std::string s = "Q\0\0\0"s + static_cast<char>(len);
    const FrameResult r = decode_frame(as_bytes(s), Limits{});
    EXPECT_EQ(r.status, DecodeStatus::kError) << len;
    EXPECT_FALSE(r.error.empty());
  }
  // Negative as int32 is huge as uint32: also refused, not waited for.
  const std::string neg = "Q\xff\xff\xff\xff"s;
  EXPECT_EQ(decode_frame(as_bytes(neg), Limits{}).status, DecodeStatus::kError);
}

// An oversize length is refused from the 5-byte header alone, before the body arrives.
TEST(ProtocolFraming, LengthOverLimitIsAnErrorBeforeTheBytesArrive) {
  Limits limits;
  limits.max_message = 100;
  const std::string at_limit = "d\x00\x00\x00\x68"s;  // 104 = 4 + 100
  EXPECT_EQ(decode_frame(as_bytes(at_limit), limits).status, DecodeStatus::kNeedMore);
  const std::string over = "d\x00\x00\x00\x69"s;  // 105 = 4 + 101
  const FrameResult r = decode_frame(as_bytes(over), limits);
  EXPECT_EQ(r.status, DecodeStatus::kError);
  EXPECT_FALSE(r.error.empty());
  // Default limit: a 1 GiB message is refused at once.
  const std::string huge = "d\x40\x00\x00\x00"s;
  EXPECT_EQ(decode_frame(as_bytes(huge), Limits{}).status, DecodeStatus::kError);
}

// The body view points into the caller's buffer (zero-copy forwarding).
TEST(ProtocolFraming, BodyPointsIntoInput) {
  std::string s;
  append_query(s, "SELECT 1");
  const Bytes in = as_bytes(s);
  const FrameResult r = decode_frame(in, Limits{});
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.body.data(), in.data() + kHeaderSize);
}

// ---- startup phase ----

StartupResult startup(const std::string& s, const Limits& limits = {}) {
  return decode_startup(as_bytes(s), limits);
}

// SSLRequest as builders write it: length 8, code 80877103.
TEST(ProtocolStartup, SslRequest) {
  std::string s;
  append_ssl_request(s);
  EXPECT_EQ(s, "\x00\x00\x00\x08\x04\xd2\x16\x2f"s);
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.packet.kind, StartupKind::kSslRequest);
  EXPECT_EQ(r.size, 8u);
}

// GSSENCRequest: length 8, code 80877104.
TEST(ProtocolStartup, GssEncRequest) {
  const StartupResult r = startup("\x00\x00\x00\x08\x04\xd2\x16\x30"s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.packet.kind, StartupKind::kGssEncRequest);
}

// SSLRequest/GSSENCRequest with any other length is refused, without waiting for the bytes.
TEST(ProtocolStartup, SslAndGssRequestMustBeExactlyEightBytes) {
  EXPECT_EQ(startup("\x00\x00\x00\x0c\x04\xd2\x16\x2f"s).status, DecodeStatus::kError);
  EXPECT_EQ(startup("\x00\x00\x00\x0c\x04\xd2\x16\x30\0\0\0\0"s).status, DecodeStatus::kError);
}

// CancelRequest: length 16, code 80877102, pid, key.
TEST(ProtocolStartup, CancelRequest) {
  std::string s;
  append_cancel_request(s, 4242, -123456789);
  ASSERT_EQ(s.size(), 16u);
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.packet.kind, StartupKind::kCancelRequest);
  EXPECT_EQ(r.packet.cancel_pid, 4242);
  EXPECT_EQ(r.packet.cancel_key, -123456789);
  EXPECT_EQ(r.size, 16u);
  // Any other length is an error (protocol 3.0 keys are 4 bytes).
  EXPECT_EQ(startup("\x00\x00\x00\x14\x04\xd2\x16\x2e"s).status, DecodeStatus::kError);
  EXPECT_EQ(startup("\x00\x00\x00\x0c\x04\xd2\x16\x2e\0\0\0\1"s).status, DecodeStatus::kError);
  // Short by one byte: wait for it.
  const StartupResult partial = startup(s.substr(0, 15));
  EXPECT_EQ(partial.status, DecodeStatus::kNeedMore);
  EXPECT_EQ(partial.needed, 16u);
}

// StartupMessage 3.0 with every parameter kept, in order, including ones we do not know
// (JDBC's extra_float_digits, protocol extensions _pq_.*).
TEST(ProtocolStartup, StartupMessageWithParameters) {
  const std::vector<std::pair<std::string, std::string>> params = {{"user", "alice"},
                                                                   {"database", "app"},
                                                                   {"extra_float_digits", "3"},
                                                                   {"application_name", ""},
                                                                   {"_pq_.something", "on"}};
  std::string s;
  append_startup_message(s, params);
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage) << r.error;
  EXPECT_EQ(r.packet.kind, StartupKind::kStartup);
  EXPECT_EQ(r.packet.major, 3);
  EXPECT_EQ(r.packet.minor, 0);
  EXPECT_EQ(r.packet.params, params);
  EXPECT_EQ(r.size, s.size());
  EXPECT_EQ(startup_param(r.packet, "user"), "alice");
  EXPECT_EQ(startup_param(r.packet, "application_name"), "");
  EXPECT_EQ(startup_param(r.packet, "options"), "");
}

// A StartupMessage with no parameters at all is well formed (the caller requires "user").
TEST(ProtocolStartup, StartupMessageWithoutParameters) {
  std::string s;
  append_startup_message(s, {});
  EXPECT_EQ(s, "\x00\x00\x00\x09\x00\x03\x00\x00\x00"s);
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_TRUE(r.packet.params.empty());
}

// A repeated parameter: the last value wins, as in PostgreSQL.
TEST(ProtocolStartup, RepeatedParameterLastWins) {
  std::string s;
  append_startup_message(s, {{"user", "a"}, {"user", "b"}});
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(startup_param(r.packet, "user"), "b");
}

// A 3.2 request is accepted with its minor reported, for NegotiateProtocolVersion.
TEST(ProtocolStartup, NewerMinorVersionIsAcceptedAndReported) {
  std::string s = "\x00\x00\x00\x12\x00\x03\x00\x02user\0bob\0\0"s;
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage) << r.error;
  EXPECT_EQ(r.packet.major, 3);
  EXPECT_EQ(r.packet.minor, 2);
  EXPECT_EQ(startup_param(r.packet, "user"), "bob");
}

// Protocol 2 (and any other major) is refused as soon as the code is readable.
TEST(ProtocolStartup, OtherMajorVersionsAreRejected) {
  EXPECT_EQ(startup("\x00\x00\x00\x13\x00\x02\x00\x00"s).status, DecodeStatus::kError);
  EXPECT_EQ(startup("\x00\x00\x00\x13\x00\x04\x00\x00"s).status, DecodeStatus::kError);
  // An unknown 1234.x request code is not a startup message either.
  EXPECT_EQ(startup("\x00\x00\x00\x08\x04\xd2\x16\x31"s).status, DecodeStatus::kError);
}

// The final terminator must be there and must be the last byte.
TEST(ProtocolStartup, MissingOrMisplacedTerminatorIsAnError) {
  // "user\0bob\0" with no final \0.
  EXPECT_EQ(startup("\x00\x00\x00\x11\x00\x03\x00\x00user\0bob\0"s).status, DecodeStatus::kError);
  // Name without its own terminator.
  EXPECT_EQ(startup("\x00\x00\x00\x0c\x00\x03\x00\x00user"s).status, DecodeStatus::kError);
  // Name with no value at all.
  EXPECT_EQ(startup("\x00\x00\x00\x0d\x00\x03\x00\x00user\0"s).status, DecodeStatus::kError);
  // Bytes after the terminator.
  EXPECT_EQ(startup("\x00\x00\x00\x0b\x00\x03\x00\x00\0xx"s).status, DecodeStatus::kError);
  // A bare 8-byte StartupMessage has no terminator.
  EXPECT_EQ(startup("\x00\x00\x00\x08\x00\x03\x00\x00"s).status, DecodeStatus::kError);
}

// Length under 8 is an error at once; over the limit too, from the first 4 bytes.
TEST(ProtocolStartup, BadLengthsAreErrorsBeforeTheBytesArrive) {
  for (int len = 0; len < 8; ++len) {
    EXPECT_EQ(startup("\x00\x00\x00"s + static_cast<char>(len)).status, DecodeStatus::kError)
        << len;
  }
  // 10001 > PostgreSQL's MAX_STARTUP_PACKET_LENGTH (10000): refused from 4 bytes alone.
  EXPECT_EQ(startup("\x00\x00\x27\x11"s).status, DecodeStatus::kError);
  EXPECT_EQ(startup("\x00\x00\x27\x10"s).status, DecodeStatus::kNeedMore);
  EXPECT_EQ(startup("\xff\xff\xff\xff"s).status, DecodeStatus::kError);
  Limits small;
  small.max_startup_packet = 64;
  std::string s;
  append_startup_message(s, {{"user", std::string(100, 'u')}});
  EXPECT_EQ(startup(s, small).status, DecodeStatus::kError);
}

// A startup packet split at every offset: kNeedMore until the last byte, then the packet.
TEST(ProtocolStartup, SplitAtEveryOffset) {
  std::string s;
  append_startup_message(s, {{"user", "alice"}, {"database", "app"}});
  for (std::size_t k = 0; k < s.size(); ++k) {
    const StartupResult r = startup(s.substr(0, k));
    ASSERT_EQ(r.status, DecodeStatus::kNeedMore) << k;
    EXPECT_GT(r.needed, k);
    EXPECT_EQ(r.size, 0u);
  }
  EXPECT_EQ(startup(s).status, DecodeStatus::kMessage);
}

// Startup then typed messages in one stream, as a client sends them; only the startup
// packet is consumed by decode_startup, the rest frames normally.
TEST(ProtocolStartup, StartupFollowedByTypedMessages) {
  std::string s;
  append_startup_message(s, {{"user", "alice"}});
  const std::size_t startup_size = s.size();
  append_password_message(s, "secret");
  const StartupResult r = startup(s);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.size, startup_size);
  const FrameResult f = decode_frame(as_bytes(s).subspan(r.size), Limits{});
  ASSERT_EQ(f.status, DecodeStatus::kMessage);
  EXPECT_EQ(f.frame.type, 'p');
}

}  // namespace
}  // namespace pgcutover::protocol
