#include "proxy/admin/http_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace pgcutover::proxy {
namespace {

bool sha256(std::string_view data, std::array<unsigned char, 32>& out) {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 &&
         len == out.size();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

BearerToken::BearerToken(std::string_view token) {
  configured_ = !token.empty() && sha256(token, digest_);
}

bool BearerToken::check(std::string_view authorization) const {
  if (!configured_) return false;
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme) ||
      (authorization[kScheme.size()] != ' ' && authorization[kScheme.size()] != '\t')) {
    return false;
  }
  std::string_view presented = trim(authorization.substr(kScheme.size()));
  if (presented.empty()) return false;
  std::array<unsigned char, 32> d{};
  if (!sha256(presented, d)) return false;
  return CRYPTO_memcmp(d.data(), digest_.data(), d.size()) == 0;
}

}  // namespace pgcutover::proxy
