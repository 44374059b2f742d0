#include "proxy/pool/prepared_lru.h"

namespace pgcutover::proxy {

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
