// Reading whole messages from a Stream for the phases that are not the relay: login on both
// sides, internal queries (parameter sync, DISCARD ALL), cancel. The relay itself frames in
// place and forwards without copying (client_session.cpp).
#pragma once

#include <string>

#include "proxy/net/asio.h"
#include "proxy/net/byte_buffer.h"
#include "proxy/net/stream.h"

namespace pgcutover::proxy {

struct ReadMessage {
  error_code ec;           // I/O error (EOF included)
  std::string_view error;  // protocol error (bad length...): the stream cannot be trusted
  char type = 0;
  std::string body;
  bool ok() const { return !ec && error.empty(); }
};

// Reads one typed message, buffering through `buf` (bytes after it stay in `buf`).
awaitable<ReadMessage> read_message(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits);

struct ReadStartup {
  error_code ec;
  std::string_view error;
  protocol::StartupPacket packet;
  bool ok() const { return !ec && error.empty(); }
};
awaitable<ReadStartup> read_startup(Stream& stream, ByteBuffer& buf,
                                    const protocol::Limits& limits);

}  // namespace pgcutover::proxy
