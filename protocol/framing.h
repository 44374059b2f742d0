// Framing of PostgreSQL protocol 3.0 messages over a byte span: no I/O, no allocation for
// typed messages. See "Frontend/Backend Protocol: Message Formats" in the PostgreSQL docs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgcutover::protocol {

using Bytes = std::span<const std::uint8_t>;

inline Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Hard limits, checked against the declared length before anything is buffered or allocated.
struct Limits {
  // PostgreSQL's MAX_STARTUP_PACKET_LENGTH; Envoy and PgBouncer cap the startup packet too.
  std::size_t max_startup_packet = 10000;
  // Largest typed message accepted (declared length, header excluded).
  std::size_t max_message = 64 * 1024 * 1024;
};

enum class DecodeStatus {
  kNeedMore,  // nothing consumed; wait for at least `needed` bytes in total
  kMessage,   // one whole message; `size` bytes consumed
  kError,     // the stream can no longer be trusted; `error` says why
};

// Header of every typed message: 1 type byte + int32 length (which counts itself).
inline constexpr std::size_t kHeaderSize = 5;

// One typed message framed in place: `body` points into the caller's buffer.
struct Frame {
  char type = 0;
  Bytes body;            // the message without its 5-byte header
  std::size_t size = 0;  // bytes the whole message occupies in the input (5 + body)
};

struct FrameResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  Frame frame;
  std::size_t needed = kHeaderSize;  // kNeedMore: total input size that would complete it
  std::string_view error;            // kError: static text, safe to log
};

// Frames the first typed message in `input` (after the startup phase, both directions).
FrameResult decode_frame(Bytes input, const Limits& limits);

// Startup-phase packets have no type byte: the caller says it is in the startup phase.
enum class StartupKind { kSslRequest, kGssEncRequest, kCancelRequest, kStartup };

inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kProtocol30 = 196608;  // 3 << 16

struct StartupPacket {
  StartupKind kind = StartupKind::kStartup;
  std::uint16_t major = 0;  // kStartup: requested protocol version
  std::uint16_t minor = 0;
  std::int32_t cancel_pid = 0;  // kCancelRequest
  std::int32_t cancel_key = 0;
  // kStartup: every parameter in order ("user", "database", "options", GUCs, "_pq_.*").
  std::vector<std::pair<std::string, std::string>> params;
};

struct StartupResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  StartupPacket packet;
  std::size_t size = 0;    // kMessage: bytes consumed
  std::size_t needed = 8;  // kNeedMore
  std::string_view error;  // kError
};

// Decodes one startup-phase packet. A StartupMessage with major 3 and any minor is accepted
// (the caller answers NegotiateProtocolVersion for minor > 0); other majors are kError.
StartupResult decode_startup(Bytes input, const Limits& limits);

// Value of a startup parameter, or empty when absent.
std::string_view startup_param(const StartupPacket& p, std::string_view name);

}  // namespace pgcutover::protocol
