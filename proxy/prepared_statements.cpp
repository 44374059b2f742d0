#include "proxy/prepared_statements.h"

#include <openssl/evp.h>

#include <functional>

namespace pgcutover::proxy {

std::string server_statement_name(std::string_view query, std::string_view param_types) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, query.data(), query.size()) == 1 &&
            EVP_DigestUpdate(ctx, "\0", 1) == 1 &&
            EVP_DigestUpdate(ctx, param_types.data(), param_types.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, digest, &len) == 1;
  EVP_MD_CTX_free(ctx);
  std::string name = "pgc_";
  if (!ok || len < 16) {
    // libcrypto failing on SHA-256 is an impossible state; a shared name for different
    // statements would be worse than a visible failure, so fall back to the text itself.
    std::size_t h = std::hash<std::string_view>{}(query) ^
                    (std::hash<std::string_view>{}(param_types)*1099511628211ULL);
    return name + "h" + std::to_string(h) + "_" + std::to_string(query.size());
  }
  static const char* hex = "0123456789abcdef";
  for (unsigned i = 0; i < 16; ++i) {
    name.push_back(hex[digest[i] >> 4]);
    name.push_back(hex[digest[i] & 15]);
  }
  return name;
}

bool PreparedLru::touch(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return false;
  order_.splice(order_.begin(), order_, it->second);
  return true;
}

void PreparedLru::insert(const std::string& name) {
  if (touch(name)) return;
  order_.push_front(name);
  index_.emplace(name, order_.begin());
}

void PreparedLru::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

}  // namespace pgcutover::proxy
