// A growable byte buffer with a read and a write position: bytes arrive at the end from a
// socket read and are consumed from the front as messages are framed. Compacts instead of
// reallocating when there is room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "protocol/framing.h"

namespace pgcutover::proxy {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t initial = 16 * 1024) : data_(initial) {}

  protocol::Bytes readable() const { return {data_.data() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Room for at least `min` more bytes at the end.
  std::uint8_t* prepare(std::size_t min, std::size_t& room) {
    if (data_.size() - end_ < min) {
      if (begin_ > 0) {
        std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (data_.size() - end_ < min) data_.resize(std::max(data_.size() * 2, end_ + min));
    }
    room = data_.size() - end_;
    return data_.data() + end_;
  }
  void commit(std::size_t n) { end_ += n; }
  void clear() { begin_ = end_ = 0; }
  // Gives back all memory while nothing is buffered (an idle client holds no buffer).
  void release() {
    if (empty() && !data_.empty()) std::vector<std::uint8_t>().swap(data_);
  }
  // Gives back memory after a huge message passed through.
  void shrink(std::size_t keep) {
    if (empty() && data_.size() > keep * 4) {
      data_.assign(keep, 0);
      data_.shrink_to_fit();
    }
  }

 private:
  std::vector<std::uint8_t> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// The 5-byte header of a typed message, checked the way decode_frame checks it. Used where
// the relay streams a message it does not need whole.
struct MessageHeader {
  char type = 0;
  std::uint32_t length = 0;  // as declared: counts itself, not the type byte
  std::size_t total() const { return 1 + static_cast<std::size_t>(length); }
};
inline bool read_header(protocol::Bytes b, MessageHeader& h) {
  if (b.size() < protocol::kHeaderSize) return false;
  h.type = static_cast<char>(b[0]);
  h.length = (std::uint32_t{b[1]} << 24) | (std::uint32_t{b[2]} << 16) |
             (std::uint32_t{b[3]} << 8) | std::uint32_t{b[4]};
  return true;
}

}  // namespace pgcutover::proxy
