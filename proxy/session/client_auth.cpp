#include "proxy/session/client_auth.h"

#include <openssl/evp.h>

#include <mutex>

#include "protocol/auth.h"
#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/net/message_io.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {
namespace {

using Outcome = ClientAuthResult::Outcome;

ClientAuthResult failed(const std::string& user) {
  stats().auth_failures_total.fetch_add(1, std::memory_order_relaxed);
  return {Outcome::kFailed, "28P01", "password authentication failed for user \"" + user + "\""};
}
ClientAuthResult protocol_error(std::string message) {
  return {Outcome::kProtocolError, "08P01", std::move(message)};
}

// Per-process secret so that a mock salt is stable for one user name (a client asking twice
// sees the same salt, as for a real user) but not predictable.
const std::array<std::uint8_t, 32>& mock_secret() {
  static std::array<std::uint8_t, 32> secret;
  static std::once_flag once;
  std::call_once(once, [] { protocol::random_bytes(secret.data(), secret.size()); });
  return secret;
}

protocol::ScramVerifier mock_verifier(const std::string& user) {
  std::array<std::uint8_t, 32> digest{};
  unsigned int len = 0;
  std::string input(reinterpret_cast<const char*>(mock_secret().data()), mock_secret().size());
  input += user;
  EVP_Digest(input.data(), input.size(), digest.data(), &len, EVP_sha256(), nullptr);
  protocol::ScramVerifier v;
  v.iterations = 4096;
  v.salt.assign(reinterpret_cast<const char*>(digest.data()), 16);
  protocol::random_bytes(v.stored_key.data(), v.stored_key.size());
  protocol::random_bytes(v.server_key.data(), v.server_key.size());
  return v;
}

awaitable<bool> send(Stream& client, const std::string& out) {
  auto [ec, n] = co_await client.write(asio::buffer(out));
  co_return !ec;
}

awaitable<ClientAuthResult> scram(Stream& client, ByteBuffer& in, const Settings& settings,
                                  const std::string& user, const UserSecret* secret) {
  std::string out;
  protocol::append_auth_sasl(out, {"SCRAM-SHA-256"});
  if (!co_await send(client, out)) co_return ClientAuthResult{};
  ReadMessage m = co_await read_message(client, in, settings.client_limits);
  if (!m.ok()) co_return m.ec ? ClientAuthResult{} : protocol_error("invalid SASL message");
  if (m.type != protocol::frontend::kPassword) co_return protocol_error("expected SASL response");
  auto initial = protocol::parse_sasl_initial_response(protocol::as_bytes(m.body));
  if (!initial) co_return protocol_error("malformed SASLInitialResponse");
  if (initial->mechanism != "SCRAM-SHA-256") {
    co_return protocol_error("client selected an invalid SASL authentication mechanism");
  }
  bool known = secret && secret->scram;
  protocol::ScramServer server(known ? *secret->scram : mock_verifier(user));
  protocol::ScramStep first = server.handle_client_first(initial->data);
  if (!first.ok) co_return protocol_error("malformed SCRAM message");
  out.clear();
  protocol::append_auth_sasl_continue(out, first.message);
  if (!co_await send(client, out)) co_return ClientAuthResult{};
  m = co_await read_message(client, in, settings.client_limits);
  if (!m.ok()) co_return m.ec ? ClientAuthResult{} : protocol_error("invalid SASL message");
  if (m.type != protocol::frontend::kPassword) co_return protocol_error("expected SASL response");
  protocol::ScramStep final_step = server.handle_client_final(m.body);
  if (!final_step.ok || !known || !server.authenticated()) co_return failed(user);
  out.clear();
  protocol::append_auth_sasl_final(out, final_step.message);
  if (!co_await send(client, out)) co_return ClientAuthResult{};
  co_return ClientAuthResult{Outcome::kOk, {}, {}};
}

awaitable<ClientAuthResult> md5(Stream& client, ByteBuffer& in, const Settings& settings,
                                const std::string& user, const UserSecret* secret) {
  std::uint8_t salt[4];
  protocol::random_bytes(salt, sizeof salt);
  std::string out;
  protocol::append_auth_md5(out, salt);
  if (!co_await send(client, out)) co_return ClientAuthResult{};
  ReadMessage m = co_await read_message(client, in, settings.client_limits);
  if (!m.ok()) co_return m.ec ? ClientAuthResult{} : protocol_error("invalid password message");
  if (m.type != protocol::frontend::kPassword)
    co_return protocol_error("expected password response");
  auto response = protocol::parse_password(protocol::as_bytes(m.body));
  if (!response) co_return protocol_error("malformed password message");
  if (!secret || secret->md5_or_plain.empty()) co_return failed(user);
  if (!protocol::md5_verify(user, secret->md5_or_plain, salt, *response)) co_return failed(user);
  co_return ClientAuthResult{Outcome::kOk, {}, {}};
}

}  // namespace

awaitable<ClientAuthResult> authenticate_client(Stream& client, ByteBuffer& in,
                                                const Settings& settings, const std::string& user) {
  const UserSecret* secret = nullptr;
  if (auto it = settings.users.find(user); it != settings.users.end()) secret = &it->second;
  if (settings.config.auth.auth_type == AuthType::kMd5)
    co_return co_await md5(client, in, settings, user, secret);
  co_return co_await scram(client, in, settings, user, secret);
}

}  // namespace pgcutover::proxy
