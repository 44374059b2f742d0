// Thin wrappers over OpenSSL's libcrypto for the hashes SCRAM-SHA-256 (RFC 5802 section 2.2,
// RFC 7677) and MD5 authentication need. Internal to protocol/: the rest of the tree uses
// auth.h. Fixed-size outputs, no exceptions; libcrypto failing on these is an impossible
// state and aborts loudly (a predictable or zero key would be worse).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace pgcutover::protocol::crypto {

using Sha256 = std::array<std::uint8_t, 32>;
using Md5 = std::array<std::uint8_t, 16>;

Sha256 sha256(std::string_view data);
Sha256 hmac_sha256(std::string_view key, std::string_view data);
// Hi() of RFC 5802 section 2.2: PBKDF2 with HMAC-SHA-256, one 32-byte block.
Sha256 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations);
Md5 md5(std::string_view data);

template <std::size_t N>
std::string_view view(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

// Overwrites key material before it goes out of scope (OPENSSL_cleanse cannot be optimized out).
void cleanse(void* p, std::size_t n);

}  // namespace pgcutover::protocol::crypto
