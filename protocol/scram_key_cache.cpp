// The client's SCRAM keys, kept per password, salt and iteration count (scram_internal.h).
//
// PostgreSQL keeps one salt and count per role until its password changes, so a pool that
// opens connections to one server as one role derives the same keys every time: PBKDF2 with
// 4,096 rounds, about a millisecond of CPU on the thread that serves the pool's other clients.
// A prewarm opening several connections at once stalled those clients for that long per
// connection. The keys stay in memory beside the password they come from, which the proxy
// holds anyway; nothing here is written anywhere.
#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

#include "protocol/crypto.h"
#include "protocol/scram_internal.h"

namespace pgcutover::protocol {
namespace {

// A handful of (server, role) pairs in practice; the oldest goes when a new one comes.
constexpr std::size_t kCapacity = 32;

struct Entry {
  crypto::Sha256 id;  // of the count, the salt and the password: the lookup key
  ScramKeys keys;
};

struct Cache {
  std::mutex mu;
  std::deque<Entry> entries;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: connections may still be opening at exit
  return *c;
}

crypto::Sha256 entry_id(std::string_view password, std::string_view salt, int iterations) {
  std::string material = std::to_string(iterations) + '\0' + std::to_string(salt.size()) + '\0';
  material.append(salt);
  material.append(password);
  crypto::Sha256 id = crypto::sha256(material);
  crypto::cleanse(material.data(), material.size());
  return id;
}

}  // namespace

ScramKeys cached_scram_keys(std::string_view password, std::string_view salt, int iterations) {
  const crypto::Sha256 id = entry_id(password, salt, iterations);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    for (const Entry& e : c.entries)
      if (e.id == id) return e.keys;
  }
  // Derived outside the lock: two connections racing derive twice, which is only the cost
  // the cache saves the next ones.
  ScramKeys keys = derive_scram_keys(password, salt, iterations);
  std::lock_guard lock(c.mu);
  if (std::none_of(c.entries.begin(), c.entries.end(),
                   [&](const Entry& e) { return e.id == id; })) {
    if (c.entries.size() >= kCapacity) {
      crypto::cleanse(&c.entries.front(), sizeof(Entry));
      c.entries.pop_front();
    }
    c.entries.push_back({id, keys});
  }
  return keys;
}

std::size_t scram_key_cache_entries() {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  return c.entries.size();
}

}  // namespace pgcutover::protocol
