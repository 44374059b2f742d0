// Bearer-token check for the admin API (RFC 6750). Only the SHA-256 of the configured token is
// kept, and the presented token is compared by digest with CRYPTO_memcmp: the comparison takes
// the same time whatever the token's length or the position of the first wrong byte, so it
// cannot be guessed byte by byte from response timings.
#pragma once

#include <array>
#include <string_view>

namespace pgcutover::proxy {

class BearerToken {
 public:
  // An empty token means "not configured": every check fails (fail closed).
  explicit BearerToken(std::string_view token);

  bool configured() const { return configured_; }
  // `authorization`: the whole Authorization header value, e.g. "Bearer abc". The scheme is
  // case-insensitive; surrounding spaces are ignored.
  bool check(std::string_view authorization) const;

 private:
  std::array<unsigned char, 32> digest_{};
  bool configured_ = false;
};

}  // namespace pgcutover::proxy
