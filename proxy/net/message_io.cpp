#include "proxy/net/message_io.h"

namespace pgcutover::proxy {
namespace {

// Reads until `decode` (decode_frame or decode_startup) answers a whole message or an error.
// `on_message(result)` takes the message out of the buffer; `chunk` is the smallest read.
template <class Decode, class OnMessage, class Out>
awaitable<void> read_until_decoded(Stream& stream, ByteBuffer& buf, Decode decode,
                                   OnMessage on_message, Out& out, std::size_t chunk) {
  for (;;) {
    auto r = decode(buf.readable());
    if (r.status == protocol::DecodeStatus::kMessage) {
      on_message(r);
      co_return;
    }
    if (r.status == protocol::DecodeStatus::kError) {
      out.error = r.error;
      co_return;
    }
    std::size_t room = 0;
    std::uint8_t* p = buf.prepare(
        std::max<std::size_t>(r.needed > buf.size() ? r.needed - buf.size() : 1, chunk), room);
    auto [ec, n] = co_await stream.read_some(asio::buffer(p, room));
    if (ec) {
      out.ec = ec;
      co_return;
    }
    buf.commit(n);
  }
}

}  // namespace

awaitable<ReadMessage> read_message(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits) {
  ReadMessage out;
  co_await read_until_decoded(
      stream, buf, [&](protocol::Bytes in) { return protocol::decode_frame(in, limits); },
      [&](const protocol::FrameResult& r) {
        out.type = r.frame.type;
        out.body.assign(reinterpret_cast<const char*>(r.frame.body.data()), r.frame.body.size());
        buf.consume(r.frame.size);
      },
      out, 4096);
  co_return out;
}

awaitable<ReadStartup> read_startup(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits) {
  ReadStartup out;
  co_await read_until_decoded(
      stream, buf, [&](protocol::Bytes in) { return protocol::decode_startup(in, limits); },
      [&](protocol::StartupResult& r) {
        out.packet = std::move(r.packet);
        buf.consume(r.size);
      },
      out, 512);
  co_return out;
}

}  // namespace pgcutover::proxy
