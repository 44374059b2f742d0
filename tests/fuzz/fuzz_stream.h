// Shared by the fuzz targets that read a byte stream (fuzz_frame, fuzz_frontend, fuzz_backend):
// frames it message by message as the proxy's read loops do, checks what decode_frame promises
// (a frame never claims bytes it was not given; "need more" only when more is really needed;
// an error always says why) and hands each frame to the target's own parsers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/framing.h"

namespace pgcutover::fuzz {

inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

template <class OnFrame>
void for_each_frame(const std::uint8_t* data, std::size_t size, OnFrame on_frame) {
  using namespace pgcutover::protocol;
  Limits limits;
  limits.max_message = 1 << 16;
  Bytes in(data, size);
  while (true) {
    const FrameResult r = decode_frame(in, limits);
    if (r.status != DecodeStatus::kMessage) {
      if (r.status == DecodeStatus::kNeedMore) require(r.needed > in.size());
      if (r.status == DecodeStatus::kError) require(!r.error.empty());
      return;
    }
    require(r.frame.size <= in.size() && r.frame.size == kHeaderSize + r.frame.body.size());
    require(r.frame.body.data() == in.data() + kHeaderSize);
    on_frame(r.frame);
    in = in.subspan(r.frame.size);
  }
}

}  // namespace pgcutover::fuzz
