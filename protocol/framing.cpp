// Framing of typed messages and startup-phase packets. See "Frontend/Backend Protocol:
// Message Formats" and "Message Flow: Start-up" in the PostgreSQL docs.
#include "protocol/framing.h"

#include <cstring>

#include "protocol/wire.h"

namespace pgcutover::protocol {

FrameResult decode_frame(Bytes input, const Limits& limits) {
  FrameResult r;
  if (input.size() < kHeaderSize) {
    r.needed = kHeaderSize;
    return r;
  }
  // The int32 length counts itself but not the type byte.
  const std::uint32_t declared = load_be32(input.data() + 1);
  if (declared < 4) {
    // PgBouncer and PgDog reject these too: a length under 4 cannot even cover itself.
    r.status = DecodeStatus::kError;
    r.error = "message length below 4";
    return r;
  }
  const std::size_t body_size = declared - 4;
  if (body_size > limits.max_message) {
    // Refuse before waiting for (and buffering) the body: the length is attacker-controlled.
    r.status = DecodeStatus::kError;
    r.error = "message length over the configured maximum";
    return r;
  }
  const std::size_t total = kHeaderSize + body_size;
  if (input.size() < total) {
    r.needed = total;
    return r;
  }
  r.status = DecodeStatus::kMessage;
  r.frame.type = static_cast<char>(input[0]);
  r.frame.body = input.subspan(kHeaderSize, body_size);
  r.frame.size = total;
  r.needed = 0;
  return r;
}

namespace {

StartupResult startup_error(std::string_view why) {
  StartupResult r;
  r.status = DecodeStatus::kError;
  r.error = why;
  return r;
}

// StartupMessage parameters: name\0value\0 pairs, then a single \0 that must be the last byte
// of the packet (PostgreSQL's ProcessStartupPacket: "expected terminator as last byte").
bool parse_startup_params(Bytes p, std::vector<std::pair<std::string, std::string>>& out) {
  std::size_t off = 0;
  for (;;) {
    if (off >= p.size()) return false;  // no terminator
    if (p[off] == 0) return off + 1 == p.size();
    const auto* name_end =
        static_cast<const std::uint8_t*>(std::memchr(p.data() + off, 0, p.size() - off));
    if (name_end == nullptr) return false;
    const std::size_t name_len = static_cast<std::size_t>(name_end - (p.data() + off));
    const std::size_t value_off = off + name_len + 1;
    if (value_off >= p.size()) return false;
    const auto* value_end = static_cast<const std::uint8_t*>(
        std::memchr(p.data() + value_off, 0, p.size() - value_off));
    if (value_end == nullptr) return false;
    const std::size_t value_len = static_cast<std::size_t>(value_end - (p.data() + value_off));
    out.emplace_back(std::string(as_chars(p.subspan(off, name_len))),
                     std::string(as_chars(p.subspan(value_off, value_len))));
    off = value_off + value_len + 1;
  }
}

}  // namespace

StartupResult decode_startup(Bytes input, const Limits& limits) {
  StartupResult r;
  // The int32 length (counting itself) and the int32 request code; the code decides the rest.
  if (input.size() < 4) {
    r.needed = 8;
    return r;
  }
  const std::uint32_t declared = load_be32(input.data());
  // Every startup-phase packet holds at least length + code; anything shorter (including the
  // len < 4 case) cannot be trusted.
  if (declared < 8) return startup_error("startup packet length below 8");
  if (declared > limits.max_startup_packet) {
    return startup_error("startup packet length over the configured maximum");
  }
  if (input.size() < 8) {
    r.needed = declared;
    return r;
  }
  const std::uint32_t code = load_be32(input.data() + 4);
  StartupPacket& pkt = r.packet;
  // Check the length each request implies before waiting for the rest of it.
  switch (code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      if (declared != 8) return startup_error("SSLRequest/GSSENCRequest length is not 8");
      pkt.kind = code == kSslRequestCode ? StartupKind::kSslRequest : StartupKind::kGssEncRequest;
      break;
    case kCancelRequestCode:
      // Protocol 3.0 cancel keys are 4 bytes; we negotiate 3.0, so clients send 16 bytes.
      if (declared != 16) return startup_error("CancelRequest length is not 16");
      pkt.kind = StartupKind::kCancelRequest;
      break;
    default:
      pkt.kind = StartupKind::kStartup;
      pkt.major = static_cast<std::uint16_t>(code >> 16);
      pkt.minor = static_cast<std::uint16_t>(code & 0xffff);
      // Only protocol 3 exists today; a newer 3.x minor is the caller's to negotiate down.
      if (pkt.major != 3) return startup_error("unsupported frontend protocol major version");
      break;
  }
  if (input.size() < declared) {
    r.packet = {};
    r.needed = declared;
    return r;
  }
  const Bytes packet = input.first(declared);
  if (pkt.kind == StartupKind::kCancelRequest) {
    pkt.cancel_pid = static_cast<std::int32_t>(load_be32(packet.data() + 8));
    pkt.cancel_key = static_cast<std::int32_t>(load_be32(packet.data() + 12));
  } else if (pkt.kind == StartupKind::kStartup) {
    if (!parse_startup_params(packet.subspan(8), pkt.params)) {
      return startup_error("invalid startup packet layout: expected terminator as last byte");
    }
  }
  r.status = DecodeStatus::kMessage;
  r.size = declared;
  r.needed = 0;
  return r;
}

std::string_view startup_param(const StartupPacket& p, std::string_view name) {
  // Last one wins, as in PostgreSQL where a repeated name overwrites the earlier value.
  for (auto it = p.params.rbegin(); it != p.params.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return {};
}

}  // namespace pgcutover::protocol
