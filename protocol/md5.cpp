// PostgreSQL's md5 password method ("Message Flow: Start-up", AuthenticationMD5Password):
// stored form "md5" + hex(md5(password || user)); the wire response is
// "md5" + hex(md5(hex(md5(password || user)) || salt)).
#include <string>

#include "protocol/auth.h"
#include "protocol/crypto.h"

namespace pgcutover::protocol {
namespace {

constexpr std::size_t kMd5StoredLength = 35;  // "md5" + 32 hex digits

std::string hex(const crypto::Md5& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (std::uint8_t b : d) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// PostgreSQL's isMD5(): a secret that looks like a stored hash is used as one. Like
// PostgreSQL, a plaintext password of exactly this shape is therefore ambiguous.
bool looks_hashed(std::string_view secret) {
  if (secret.size() != kMd5StoredLength || secret.substr(0, 3) != "md5") return false;
  for (char c : secret.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string md5_password_hash(std::string_view user, std::string_view password) {
  std::string in;
  in.reserve(password.size() + user.size());
  in.append(password).append(user);
  std::string out = "md5" + hex(crypto::md5(in));
  crypto::cleanse(in.data(), in.size());
  return out;
}

std::string md5_response(std::string_view user, std::string_view secret,
                         const std::uint8_t salt[4]) {
  std::string inner = looks_hashed(secret) ? std::string(secret.substr(3))
                                           : md5_password_hash(user, secret).substr(3);
  inner.append(reinterpret_cast<const char*>(salt), 4);
  std::string out = "md5" + hex(crypto::md5(inner));
  crypto::cleanse(inner.data(), inner.size());
  return out;
}

bool md5_verify(std::string_view user, std::string_view secret, const std::uint8_t salt[4],
                std::string_view response) {
  return constant_time_equal(md5_response(user, secret, salt), response);
}

}  // namespace pgcutover::protocol
