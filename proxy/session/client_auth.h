// Client authentication by the proxy itself (the proxy never forwards a client's password to a
// backend): SCRAM-SHA-256 by default, md5 when configured. An unknown user goes through the
// same full exchange against a mock verifier and fails with the same 28P01 message as a wrong
// password, so a client cannot tell whether a user exists (PostgreSQL does the same).
#pragma once

#include <string>

#include "proxy/net/asio.h"
#include "proxy/net/byte_buffer.h"
#include "proxy/net/stream.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

struct ClientAuthResult {
  enum class Outcome { kOk, kFailed, kProtocolError, kClosed };
  Outcome outcome = Outcome::kClosed;
  std::string sqlstate;  // for kFailed / kProtocolError
  std::string message;
};

// Runs the exchange up to (not including) AuthenticationOk.
awaitable<ClientAuthResult> authenticate_client(Stream& client, ByteBuffer& in,
                                                const Settings& settings, const std::string& user);

}  // namespace pgcutover::proxy
