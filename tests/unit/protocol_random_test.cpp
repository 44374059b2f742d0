// Random bytes through every decoder must never crash, assert or read out of bounds (run the
// unit tests under -DPGCUTOVER_SANITIZE=ON to make "out of bounds" loud). Fixed seed, so a
// failure reproduces; the libFuzzer targets in tests/fuzz/ search the same space with coverage.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "protocol/framing.h"
#include "protocol/messages.h"

namespace pgcutover::protocol {
namespace {

// Feeds one body to every parser; returns how many accepted it (so the work is not dead).
int parse_everything(Bytes body) {
  int accepted = 0;
  accepted += parse_query(body).has_value();
  accepted += parse_parse(body).has_value();
  accepted += parse_bind(body).has_value();
  accepted += parse_describe(body).has_value();
  accepted += parse_close(body).has_value();
  accepted += parse_execute(body).has_value();
  accepted += parse_ready_for_query(body).has_value();
  accepted += parse_parameter_status(body).has_value();
  accepted += parse_backend_key_data(body).has_value();
  accepted += parse_authentication(body).has_value();
  accepted += parse_notification(body).has_value();
  accepted += parse_command_complete(body).has_value();
  accepted += parse_error_notice(body).has_value();
  accepted += parse_sasl_mechanisms(body).has_value();
  accepted += parse_sasl_initial_response(body).has_value();
  accepted += parse_password(body).has_value();
  return accepted;
}

// 200k random buffers, biased toward the shapes that matter: small lengths, zero bytes
// (terminators) and plausible headers, so the decoders get past their first check.
TEST(ProtocolRandom, RandomBuffersThroughEveryDecoderDoNotCrash) {
  std::mt19937 rng(20261124);
  std::uniform_int_distribution<int> size_dist(0, 64);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  std::uniform_int_distribution<int> pick(0, 9);
  Limits limits;
  limits.max_message = 4096;
  limits.max_startup_packet = 4096;
  long messages = 0, startups = 0, accepted = 0;
  std::string buf;
  for (int i = 0; i < 200000; ++i) {
    const int n = size_dist(rng);
    buf.resize(static_cast<std::size_t>(n));
    for (char& c : buf) {
      const int p = pick(rng);
      c = static_cast<char>(p < 3 ? 0 : byte_dist(rng));
    }
    // Half the time, make the length field honest so a whole message frames.
    if (n >= 5 && (i & 1)) {
      const auto len = static_cast<std::uint32_t>(n - 1);
      buf[1] = static_cast<char>(len >> 24);
      buf[2] = static_cast<char>(len >> 16);
      buf[3] = static_cast<char>(len >> 8);
      buf[4] = static_cast<char>(len);
    }
    const Bytes in = as_bytes(buf);
    const FrameResult f = decode_frame(in, limits);
    if (f.status == DecodeStatus::kMessage) {
      ASSERT_LE(f.frame.size, in.size());
      ++messages;
    }
    accepted += parse_everything(in);
    if (f.status == DecodeStatus::kMessage) accepted += parse_everything(f.frame.body);

    // Startup: honest length and a protocol 3 code a third of the time.
    if (n >= 8 && i % 3 == 0) {
      buf[0] = buf[1] = 0;
      buf[2] = static_cast<char>(n >> 8);
      buf[3] = static_cast<char>(n);
      buf[4] = 0;
      buf[5] = 3;
    }
    const StartupResult s = decode_startup(as_bytes(buf), limits);
    if (s.status == DecodeStatus::kMessage) {
      ASSERT_LE(s.size, buf.size());
      ++startups;
    }
  }
  // The generator must actually reach the message paths, or this test proves little.
  EXPECT_GT(messages, 10000);
  EXPECT_GT(startups, 100);
  EXPECT_GT(accepted, 1000);
}

}  // namespace
}  // namespace pgcutover::protocol
