// Randomness and constant-time comparison for authentication (auth.h).
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "protocol/auth.h"

namespace pgcutover::protocol {

void random_bytes(std::uint8_t* out, std::size_t n) {
  // SCRAM nonces and salts must be unpredictable (RFC 5802 section 9). There is no safe
  // fallback when the CSPRNG fails, so this is treated as an impossible state.
  while (n > 0) {
    const int chunk = static_cast<int>(std::min<std::size_t>(n, 1 << 20));
    if (RAND_bytes(out, chunk) != 1) {
      std::fprintf(stderr, "pgcutover: BUG: RAND_bytes failed\n");
      std::abort();
    }
    out += chunk;
    n -= static_cast<std::size_t>(chunk);
  }
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Only the lengths (public: hash and proof sizes) may influence timing, never the content.
  const std::size_t n = std::min(a.size(), b.size());
  const bool same_content = n == 0 || CRYPTO_memcmp(a.data(), b.data(), n) == 0;
  return (a.size() == b.size()) & same_content;
}

}  // namespace pgcutover::protocol
