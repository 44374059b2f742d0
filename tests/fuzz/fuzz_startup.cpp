// libFuzzer target: decode_startup on arbitrary bytes. Checks that a packet never claims
// bytes it was not given, that kNeedMore asks for more than it has, and that an accepted
// StartupMessage re-encodes (builders) to the bytes it came from when its version is 3.0.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/builders.h"
#include "protocol/framing.h"

using namespace pgcutover::protocol;

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Limits limits;
  limits.max_startup_packet = 2048;
  const Bytes in(data, size);
  const StartupResult r = decode_startup(in, limits);
  switch (r.status) {
    case DecodeStatus::kNeedMore:
      check(r.needed > size && r.needed <= limits.max_startup_packet);
      break;
    case DecodeStatus::kError:
      check(!r.error.empty());
      break;
    case DecodeStatus::kMessage: {
      check(r.size >= 8 && r.size <= size && r.size <= limits.max_startup_packet);
      const StartupPacket& p = r.packet;
      std::string w;
      if (p.kind == StartupKind::kStartup) {
        check(p.major == 3);
        (void)startup_param(p, "user");
        if (p.minor == 0) {
          append_startup_message(w, p.params);
          check(w == as_chars(in.first(r.size)));
        }
      } else if (p.kind == StartupKind::kCancelRequest) {
        check(r.size == 16);
        append_cancel_request(w, p.cancel_pid, p.cancel_key);
        check(w == as_chars(in.first(r.size)));
      } else {
        check(r.size == 8);
      }
      break;
    }
  }
  return 0;
}
