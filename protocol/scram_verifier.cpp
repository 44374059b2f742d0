// SCRAM-SHA-256 verifiers in PostgreSQL's pg_authid format (RFC 5803 style):
//   SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
// Key derivation per RFC 5802 section 3: SaltedPassword = Hi(password, salt, i),
// ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
// ServerKey = HMAC(SaltedPassword, "Server Key").
#include <algorithm>
#include <climits>
#include <string>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"
#include "protocol/scram_internal.h"

namespace pgcutover::protocol {
namespace {

constexpr std::string_view kScheme = "SCRAM-SHA-256$";

// Splits `s` at the first `sep`: the part before goes to `head`, `s` keeps the rest.
bool take_until(std::string_view& s, char sep, std::string_view& head) {
  const std::size_t at = s.find(sep);
  if (at == std::string_view::npos) return false;
  head = s.substr(0, at);
  s.remove_prefix(at + 1);
  return true;
}

bool decode_key(std::string_view b64, std::array<std::uint8_t, 32>& out) {
  const auto raw = base64_decode(b64);
  if (!raw || raw->size() != out.size()) return false;
  std::copy(raw->begin(), raw->end(), out.begin());
  return true;
}

}  // namespace

std::string scram_prepare_password(std::string_view password) {
  // See auth.h: ASCII passes unchanged; non-ASCII is used raw, PostgreSQL's fallback.
  return std::string(password);
}

ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, int iterations) {
  std::string prepared = scram_prepare_password(password);
  crypto::Sha256 salted = crypto::pbkdf2_sha256(prepared, salt, iterations);
  ScramKeys k;
  k.client_key = crypto::hmac_sha256(crypto::view(salted), "Client Key");
  k.stored_key = crypto::sha256(crypto::view(k.client_key));
  k.server_key = crypto::hmac_sha256(crypto::view(salted), "Server Key");
  crypto::cleanse(salted.data(), salted.size());
  crypto::cleanse(prepared.data(), prepared.size());
  return k;
}

std::optional<int> parse_scram_iterations(std::string_view digits) {
  // RFC 5802 section 7: posit-number = %x31-39 *DIGIT. Digits only, no leading zero, no sign,
  // no spaces, no overflow (at most INT_MAX, as PostgreSQL's int).
  if (digits.empty() || digits.size() > 10 || digits[0] == '0') return std::nullopt;
  long long v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > INT_MAX) return std::nullopt;
  return static_cast<int>(v);
}

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
  if (!text.starts_with(kScheme)) return std::nullopt;
  text.remove_prefix(kScheme.size());
  std::string_view iterations, salt, stored;
  if (!take_until(text, ':', iterations) || !take_until(text, '$', salt) ||
      !take_until(text, ':', stored)) {
    return std::nullopt;
  }
  const std::string_view server = text;  // the rest; a stray separator fails base64 below
  ScramVerifier v;
  const auto iter = parse_scram_iterations(iterations);
  const auto raw_salt = base64_decode(salt);
  if (!iter || !raw_salt || raw_salt->empty()) return std::nullopt;
  v.iterations = *iter;
  v.salt = *raw_salt;
  if (!decode_key(stored, v.stored_key) || !decode_key(server, v.server_key)) return std::nullopt;
  return v;
}

std::string format_scram_verifier(const ScramVerifier& v) {
  std::string out(kScheme);
  out += std::to_string(v.iterations);
  out += ':';
  out += base64_encode(v.salt);
  out += '$';
  out += base64_encode(crypto::view(v.stored_key));
  out += ':';
  out += base64_encode(crypto::view(v.server_key));
  return out;
}

ScramVerifier make_scram_verifier(std::string_view password, int iterations,
                                  std::string_view salt) {
  ScramVerifier v;
  v.iterations = iterations > 0 ? iterations : kScramDefaultIterations;
  if (salt.empty()) {
    v.salt.resize(kScramSaltLength);
    random_bytes(reinterpret_cast<std::uint8_t*>(v.salt.data()), v.salt.size());
  } else {
    v.salt = std::string(salt);
  }
  ScramKeys k = derive_scram_keys(password, v.salt, v.iterations);
  v.stored_key = k.stored_key;
  v.server_key = k.server_key;
  crypto::cleanse(k.client_key.data(), k.client_key.size());
  return v;
}

ScramVerifier mock_scram_verifier(std::string_view username, std::string_view server_secret,
                                  int iterations) {
  // Each value gets its own label so none can be derived from another; the NUL keeps
  // label and user name apart (no user name can make one label look like another).
  auto derive = [&](std::string_view label) {
    std::string msg(label);
    msg.push_back('\0');
    msg.append(username);
    return crypto::hmac_sha256(server_secret, msg);
  };
  ScramVerifier v;
  v.iterations = iterations > 0 ? iterations : kScramDefaultIterations;
  const crypto::Sha256 salt = derive("pgcutover scram mock salt");
  v.salt.assign(reinterpret_cast<const char*>(salt.data()), kScramSaltLength);
  v.stored_key = derive("pgcutover scram mock stored key");
  v.server_key = derive("pgcutover scram mock server key");
  return v;
}

bool scram_verify_password(std::string_view password, const ScramVerifier& v) {
  if (v.iterations < 1) return false;
  ScramKeys k = derive_scram_keys(password, v.salt, v.iterations);
  const bool ok = constant_time_equal(crypto::view(k.server_key), crypto::view(v.server_key));
  crypto::cleanse(&k, sizeof k);
  return ok;
}

}  // namespace pgcutover::protocol
