// Password authentication, both sides: SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL does it)
// and MD5. The proxy authenticates clients itself against verifiers, and authenticates to
// servers with each backend's own credentials, so no passthrough is needed.
// Channel binding (SCRAM-SHA-256-PLUS) is not offered; clients using "n,," or "y,," work.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pgcutover::protocol {

// PostgreSQL's defaults (scram_iterations, SCRAM_DEFAULT_SALT_LEN, SCRAM_RAW_NONCE_LEN).
inline constexpr int kScramDefaultIterations = 4096;
inline constexpr std::size_t kScramSaltLength = 16;
inline constexpr std::size_t kScramNonceLength = 18;  // random bytes, sent base64-encoded
// Most PBKDF2 iterations the client side will run for a server: the count comes from the
// peer, so without a cap a hostile or impostor server could pin a proxy thread for minutes.
inline constexpr int kScramMaxIterations = 1'000'000;

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
// A stand-in verifier for a user the proxy does not know, so that the exchange (salt,
// iteration count, timing, failure) looks the same as for a known user with a wrong password
// (PostgreSQL's mock_scram_secret/scram_mock_salt). The salt is derived from the user name
// and `server_secret`, so it is stable across attempts; `server_secret` must be a random
// per-deployment secret, or an attacker can compute the fake salts and tell them apart. No
// proof can match it: its StoredKey is an HMAC output nobody knows a preimage of.
ScramVerifier mock_scram_verifier(std::string_view username, std::string_view server_secret,
                                  int iterations = kScramDefaultIterations);
// Checks a plaintext password (AuthenticationCleartextPassword) against a SCRAM verifier,
// as PostgreSQL's scram_verify_plain_password does. Constant-time comparison.
bool scram_verify_password(std::string_view password, const ScramVerifier& v);
// SASLprep (RFC 4013) as PostgreSQL applies it to passwords. Only the ASCII fast path is
// implemented: an ASCII password is used as is (PostgreSQL's pg_saslprep does the same). A
// non-ASCII password is used as raw bytes, which is what PostgreSQL does when SASLprep fails;
// it matches PostgreSQL's result whenever the password is already NFKC-normalized and
// contains no mapped-to-nothing or non-ASCII space characters (true of ordinary UTF-8 text
// typed on a keyboard), and differs otherwise, e.g. for decomposed accents or U+00A0.
std::string scram_prepare_password(std::string_view password);

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
  // Tests only: use this server nonce instead of a random one (RFC 7677's test vector).
  void set_nonce_for_testing(std::string server_nonce) { fixed_nonce_ = std::move(server_nonce); }

 private:
  enum class Stage { kExpectClientFirst, kExpectClientFinal, kDone };
  Stage stage_ = Stage::kExpectClientFirst;
  std::string fixed_nonce_;
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
  // `max_iterations` caps the PBKDF2 work a server may ask for (see kScramMaxIterations).
  explicit ScramClient(std::string password, int max_iterations = kScramMaxIterations);
  std::string client_first();  // "n,,n=,r=<nonce>"
  // server-first-message -> client-final-message
  ScramStep handle_server_first(std::string_view server_first);
  // server-final-message: ok=true only when the server proved it knows the verifier
  ScramStep handle_server_final(std::string_view server_final);
  // Tests only: use this client nonce instead of a random one.
  void set_nonce_for_testing(std::string client_nonce) { fixed_nonce_ = std::move(client_nonce); }

 private:
  enum class Stage { kStart, kSentClientFirst, kSentClientFinal, kDone };
  Stage stage_ = Stage::kStart;
  std::string fixed_nonce_;
  int max_iterations_ = kScramMaxIterations;
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
