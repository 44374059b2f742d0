// The SCRAM-SHA-256 exchange, both sides, as PostgreSQL runs it (RFC 5802 sections 3 and 7,
// RFC 7677; PostgreSQL docs "SASL Authentication"). PostgreSQL's differences from the RFC,
// followed here: the user name in "n=" is ignored (the startup packet names the user, and
// libpq sends "n="), and channel binding (-PLUS) is not offered by this proxy, so a GS2
// header "p=..." is refused while "n,," and "y,," are accepted.
// Every message comes from a peer: malformed input is ok=false with a short reason, never a
// crash, and the reason never echoes secrets or unchecked client bytes.
#include <string>
#include <utility>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"
#include "protocol/scram_internal.h"

namespace pgcutover::protocol {
namespace {

ScramStep fail(std::string why) {
  ScramStep s;
  s.error = std::move(why);
  return s;
}

ScramStep success(std::string message) {
  ScramStep s;
  s.ok = true;
  s.message = std::move(message);
  return s;
}

// Reads the comma-separated "<letter>=<value>" attributes of RFC 5802 section 7.
class AttrReader {
 public:
  explicit AttrReader(std::string_view text) : text_(text), rest_(text) {}

  // The next attribute, whichever it is; nullopt when malformed or when nothing is left.
  std::optional<std::pair<char, std::string_view>> any() {
    if (rest_.size() < 2) return std::nullopt;
    const char name = rest_[0];
    if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z')) || rest_[1] != '=') {
      return std::nullopt;
    }
    start_ = offset();
    std::string_view value = rest_.substr(2);
    const std::size_t comma = value.find(',');
    expect_more_ = comma != std::string_view::npos;
    if (expect_more_) {
      rest_ = value.substr(comma + 1);
      value = value.substr(0, comma);
    } else {
      rest_ = {};
    }
    return std::pair{name, value};
  }

  // The next attribute only if it is `name`.
  std::optional<std::string_view> expect(char name) {
    if (rest_.empty() || rest_[0] != name) return std::nullopt;
    auto a = any();
    if (!a) return std::nullopt;
    return a->second;
  }

  // Everything read, and the last attribute was not followed by a dangling comma.
  bool at_end() const { return rest_.empty() && !expect_more_; }
  // Offset in the text where the attribute last read starts.
  std::size_t last_start() const { return start_; }

 private:
  std::size_t offset() const { return text_.size() - rest_.size(); }
  std::string_view text_;
  std::string_view rest_;
  std::size_t start_ = 0;
  bool expect_more_ = false;
};

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E (no comma); a nonce is one or more.
bool printable_nonce(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// Any remaining attributes are extensions (RFC 5802 section 7), which we ignore.
bool skip_extensions(AttrReader& r) {
  while (!r.at_end()) {
    if (!r.any()) return false;
  }
  return true;
}

std::string new_nonce() {
  std::uint8_t raw[kScramNonceLength];
  random_bytes(raw, sizeof raw);
  return base64_encode({reinterpret_cast<const char*>(raw), sizeof raw});
}

std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof) {
  std::string m;
  m.reserve(client_first_bare.size() + server_first.size() + client_final_without_proof.size() + 2);
  m.append(client_first_bare).append(",").append(server_first).append(",");
  m.append(client_final_without_proof);
  return m;
}

// An error text from a peer, reduced to something safe to log.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
  return out;
}

}  // namespace

// ---- server ----

ScramServer::ScramServer(ScramVerifier verifier) : verifier_(std::move(verifier)) {}

ScramStep ScramServer::handle_client_first(std::string_view client_first) {
  // Any failure, including a message out of order, ends the exchange.
  const bool in_order = stage_ == Stage::kExpectClientFirst;
  stage_ = Stage::kDone;
  if (!in_order) return fail("SCRAM message out of order");
  // PostgreSQL: "malformed SCRAM message (length mismatch)" for an embedded NUL.
  if (client_first.empty() || client_first.find('\0') != std::string_view::npos) {
    return fail("malformed SCRAM client-first-message");
  }
  // GS2 header (RFC 5802 section 7): gs2-cbind-flag "," [authzid] ",".
  if (client_first.starts_with("p=")) {
    return fail("client requires SCRAM channel binding, which is not offered");
  }
  // "y": the client supports channel binding but thinks we do not; true, as -PLUS is not
  // offered, so there is no downgrade to detect (RFC 5802 section 6).
  if (!client_first.starts_with("n,") && !client_first.starts_with("y,")) {
    return fail("malformed SCRAM GS2 header");
  }
  if (client_first.substr(2).starts_with("a=")) {
    return fail("SCRAM authorization identity is not supported");
  }
  if (client_first.size() < 3 || client_first[2] != ',') {
    return fail("malformed SCRAM GS2 header");
  }
  gs2_header_ = std::string(client_first.substr(0, 3));
  const std::string_view bare = client_first.substr(3);
  if (bare.starts_with("m=")) return fail("SCRAM mandatory extension is not supported");
  AttrReader r(bare);
  // The user name is required by the syntax but ignored: PostgreSQL authenticates the user
  // named in the startup packet.
  if (!r.expect('n')) return fail("malformed SCRAM client-first-message (no user name)");
  const auto client_nonce = r.expect('r');
  if (!client_nonce || !printable_nonce(*client_nonce)) {
    return fail("malformed SCRAM client-first-message (bad nonce)");
  }
  if (!skip_extensions(r)) return fail("malformed SCRAM client-first-message");

  client_first_bare_ = std::string(bare);
  nonce_ = std::string(*client_nonce) + (fixed_nonce_.empty() ? new_nonce() : fixed_nonce_);
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  stage_ = Stage::kExpectClientFinal;
  return success(server_first_);
}

ScramStep ScramServer::handle_client_final(std::string_view client_final) {
  // Any failure, including a message out of order, ends the exchange.
  const bool in_order = stage_ == Stage::kExpectClientFinal;
  stage_ = Stage::kDone;
  if (!in_order) return fail("SCRAM message out of order");
  if (client_final.find('\0') != std::string_view::npos) {
    return fail("malformed SCRAM client-final-message");
  }
  AttrReader r(client_final);
  // Without channel binding, c= carries the GS2 header itself: "biws" for "n,,", "eSws" for
  // "y,," (RFC 5802 section 7, cbind-input). A mismatch is tampering or a confused client.
  const auto cbind = r.expect('c');
  if (!cbind || *cbind != base64_encode(gs2_header_)) {
    return fail("SCRAM channel binding attribute does not match the GS2 header");
  }
  const auto nonce = r.expect('r');
  if (!nonce || *nonce != nonce_) return fail("SCRAM nonce mismatch");
  // Extensions may precede the proof, which is last.
  std::string_view proof_b64;
  std::size_t proof_start = 0;
  for (;;) {
    const auto a = r.any();
    if (!a) return fail("malformed SCRAM client-final-message (no proof)");
    if (a->first == 'p') {
      proof_b64 = a->second;
      proof_start = r.last_start();
      break;
    }
  }
  if (!r.at_end()) return fail("malformed SCRAM client-final-message (garbage after proof)");
  const auto proof = base64_decode(proof_b64);
  if (!proof || proof->size() != verifier_.stored_key.size()) {
    return fail("malformed SCRAM client proof");
  }
  // client-final-message-without-proof: everything before ",p=".
  const std::string am =
      auth_message(client_first_bare_, server_first_, client_final.substr(0, proof_start - 1));

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey
  // (RFC 5802 section 3). The same work is done for a mock verifier, so timing does not
  // reveal whether the user exists.
  crypto::Sha256 client_key = crypto::hmac_sha256(crypto::view(verifier_.stored_key), am);
  for (std::size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] ^= static_cast<std::uint8_t>((*proof)[i]);
  }
  const crypto::Sha256 computed_stored = crypto::sha256(crypto::view(client_key));
  crypto::cleanse(client_key.data(), client_key.size());
  if (!constant_time_equal(crypto::view(computed_stored), crypto::view(verifier_.stored_key))) {
    // Same text for a wrong password and an unknown user (mock verifier).
    return fail("SCRAM proof does not match: wrong password");
  }
  authenticated_ = true;
  const crypto::Sha256 server_signature =
      crypto::hmac_sha256(crypto::view(verifier_.server_key), am);
  return success("v=" + base64_encode(crypto::view(server_signature)));
}

// ---- client ----

ScramClient::ScramClient(std::string password, int max_iterations)
    : max_iterations_(max_iterations), password_(std::move(password)) {}

std::string ScramClient::client_first() {
  client_nonce_ = fixed_nonce_.empty() ? new_nonce() : fixed_nonce_;
  // Empty user name, as libpq sends: PostgreSQL takes the user from the startup packet.
  client_first_bare_ = "n=,r=" + client_nonce_;
  stage_ = Stage::kSentClientFirst;
  return "n,," + client_first_bare_;
}

ScramStep ScramClient::handle_server_first(std::string_view server_first) {
  // Any failure, including a message out of order, ends the exchange.
  const bool in_order = stage_ == Stage::kSentClientFirst;
  stage_ = Stage::kDone;
  if (!in_order) return fail("SCRAM message out of order");
  if (server_first.find('\0') != std::string_view::npos || server_first.starts_with("m=")) {
    return fail("malformed SCRAM server-first-message");
  }
  AttrReader r(server_first);
  // The server must extend our nonce with its own (RFC 5802 section 5.1).
  const auto nonce = r.expect('r');
  if (!nonce || !printable_nonce(*nonce) || nonce->size() <= client_nonce_.size() ||
      !nonce->starts_with(client_nonce_)) {
    return fail("SCRAM server nonce does not extend the client nonce");
  }
  const auto salt_b64 = r.expect('s');
  const auto salt = salt_b64 ? base64_decode(*salt_b64) : std::nullopt;
  if (!salt || salt->empty()) return fail("malformed SCRAM salt");
  const auto iter_text = r.expect('i');
  const auto iterations = iter_text ? parse_scram_iterations(*iter_text) : std::nullopt;
  if (!iterations) return fail("malformed SCRAM iteration count");
  if (*iterations > max_iterations_) return fail("SCRAM iteration count over the limit");
  if (!skip_extensions(r)) return fail("malformed SCRAM server-first-message");

  ScramKeys k = cached_scram_keys(password_, *salt, *iterations);
  // "c=biws" is base64("n,,"): no channel binding, which is what we sent.
  const std::string without_proof = "c=biws,r=" + std::string(*nonce);
  const std::string am = auth_message(client_first_bare_, server_first, without_proof);
  crypto::Sha256 proof = crypto::hmac_sha256(crypto::view(k.stored_key), am);
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] ^= k.client_key[i];
  expected_server_signature_ = crypto::hmac_sha256(crypto::view(k.server_key), am);
  crypto::cleanse(&k, sizeof k);
  stage_ = Stage::kSentClientFinal;
  return success(without_proof + ",p=" + base64_encode(crypto::view(proof)));
}

ScramStep ScramClient::handle_server_final(std::string_view server_final) {
  // Any failure, including a message out of order, ends the exchange.
  const bool in_order = stage_ == Stage::kSentClientFinal;
  stage_ = Stage::kDone;
  if (!in_order) return fail("SCRAM message out of order");
  AttrReader r(server_final);
  if (const auto e = r.expect('e')) {
    return fail("server rejected SCRAM authentication: " + sanitize(*e));
  }
  const auto v = r.expect('v');
  const auto signature = v ? base64_decode(*v) : std::nullopt;
  if (!signature || !skip_extensions(r)) return fail("malformed SCRAM server-final-message");
  // A server that cannot compute ServerSignature does not hold the verifier: an impostor
  // (RFC 5802 section 9, mutual authentication).
  if (!constant_time_equal(*signature, crypto::view(expected_server_signature_))) {
    return fail("SCRAM server signature does not match: the server is not who it claims");
  }
  return success({});
}

}  // namespace pgcutover::protocol
