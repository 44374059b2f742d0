#include "proxy/message_io.h"

namespace pgcutover::proxy {

awaitable<ReadMessage> read_message(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits) {
  ReadMessage out;
  for (;;) {
    protocol::FrameResult r = protocol::decode_frame(buf.readable(), limits);
    if (r.status == protocol::DecodeStatus::kMessage) {
      out.type = r.frame.type;
      out.body.assign(reinterpret_cast<const char*>(r.frame.body.data()), r.frame.body.size());
      buf.consume(r.frame.size);
      co_return out;
    }
    if (r.status == protocol::DecodeStatus::kError) {
      out.error = r.error;
      co_return out;
    }
    std::size_t room = 0;
    std::uint8_t* p = buf.prepare(
        std::max<std::size_t>(r.needed > buf.size() ? r.needed - buf.size() : 1, 4096), room);
    auto [ec, n] = co_await stream.read_some(asio::buffer(p, room));
    if (ec) {
      out.ec = ec;
      co_return out;
    }
    buf.commit(n);
  }
}

awaitable<ReadStartup> read_startup(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits) {
  ReadStartup out;
  for (;;) {
    protocol::StartupResult r = protocol::decode_startup(buf.readable(), limits);
    if (r.status == protocol::DecodeStatus::kMessage) {
      out.packet = std::move(r.packet);
      buf.consume(r.size);
      co_return out;
    }
    if (r.status == protocol::DecodeStatus::kError) {
      out.error = r.error;
      co_return out;
    }
    std::size_t room = 0;
    std::uint8_t* p = buf.prepare(
        std::max<std::size_t>(r.needed > buf.size() ? r.needed - buf.size() : 1, 512), room);
    auto [ec, n] = co_await stream.read_some(asio::buffer(p, room));
    if (ec) {
      out.ec = ec;
      co_return out;
    }
    buf.commit(n);
  }
}

}  // namespace pgcutover::proxy
