// libcrypto calls behind crypto.h. See that header for why failures abort.
#include "protocol/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

namespace pgcutover::protocol::crypto {
namespace {

[[noreturn]] void libcrypto_failed(const char* what) {
  std::fprintf(stderr, "pgcutover: BUG: libcrypto %s failed\n", what);
  std::abort();
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, std::string_view data, const char* what) {
  std::array<std::uint8_t, N> out{};
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 ||
      len != N) {
    libcrypto_failed(what);
  }
  return out;
}

}  // namespace

Sha256 sha256(std::string_view data) {
  return digest<32>(EVP_sha256(), data, "SHA-256");
}

Md5 md5(std::string_view data) {
  return digest<16>(EVP_md5(), data, "MD5");
}

Sha256 hmac_sha256(std::string_view key, std::string_view data) {
  Sha256 out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    libcrypto_failed("HMAC-SHA-256");
  }
  return out;
}

Sha256 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations) {
  Sha256 out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    libcrypto_failed("PBKDF2-HMAC-SHA-256");
  }
  return out;
}

void cleanse(void* p, std::size_t n) {
  OPENSSL_cleanse(p, n);
}

}  // namespace pgcutover::protocol::crypto
