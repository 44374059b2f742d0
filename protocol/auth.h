// Password authentication, both sides: SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL does it)
// and MD5. The proxy authenticates clients itself against verifiers, and authenticates to
// servers with each backend's own credentials, so no passthrough is needed.
// Channel binding (SCRAM-SHA-256-PLUS) is not offered; clients using "n,," or "y,," work.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgcutover::protocol {

// PostgreSQL's verifier: SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
struct ScramVerifier {
  int iterations = 4096;
  std::string salt;  // raw bytes
  std::array<std::uint8_t, 32> stored_key{};
  std::array<std::uint8_t, 32> server_key{};
};
std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);
std::string format_scram_verifier(const ScramVerifier& v);
// Builds a verifier from a plaintext password (random salt unless one is given).
ScramVerifier make_scram_verifier(std::string_view password, int iterations = 4096,
                                  std::string_view salt = {});

// Result of one SCRAM step: the message to send, or an error (never containing secrets).
struct ScramStep {
  bool ok = false;
  std::string message;  // server-first / server-final (server side), client-final (client side)
  std::string error;
};

// Server side: the proxy checking a client's password against a verifier.
class ScramServer {
 public:
  explicit ScramServer(ScramVerifier verifier);
  // client-first-message (from SASLInitialResponse) -> server-first-message
  ScramStep handle_client_first(std::string_view client_first);
  // client-final-message -> server-final-message ("v=..."); ok=false on a wrong password
  ScramStep handle_client_final(std::string_view client_final);
  bool authenticated() const { return authenticated_; }

 private:
  ScramVerifier verifier_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string gs2_header_;
  bool authenticated_ = false;
};

// Client side: the proxy logging in to a server.
class ScramClient {
 public:
  explicit ScramClient(std::string password);
  std::string client_first();  // "n,,n=,r=<nonce>"
  // server-first-message -> client-final-message
  ScramStep handle_server_first(std::string_view server_first);
  // server-final-message: ok=true only when the server proved it knows the verifier
  ScramStep handle_server_final(std::string_view server_final);

 private:
  std::string password_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::array<std::uint8_t, 32> expected_server_signature_{};
};

// MD5: stored form is "md5" + hex(md5(password + user)).
std::string md5_password_hash(std::string_view user, std::string_view password);
// Response to AuthenticationMD5Password: "md5" + hex(md5(hex(md5(password + user)) + salt)).
// `secret` may be the plaintext password or an already hashed "md5..." value.
std::string md5_response(std::string_view user, std::string_view secret,
                         const std::uint8_t salt[4]);
// Constant-time comparison of a client's md5 response against the expected one.
bool md5_verify(std::string_view user, std::string_view secret, const std::uint8_t salt[4],
                std::string_view response);

// Cryptographically random bytes (OpenSSL RAND_bytes).
void random_bytes(std::uint8_t* out, std::size_t n);
// Constant-time equality (lengths may differ; returns false then, still without early exit on
// content).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace pgcutover::protocol
