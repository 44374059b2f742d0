// Proxy-issued BackendKeyData -> the session it belongs to. A CancelRequest arrives on a new
// connection, which the accepting shard may hand to any shard, so this one map is shared by all
// shards behind a mutex; it is touched at login, at logout and per cancel, never per query.
// The key is stable for the session's life: across server connections and, later, flips.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace pgcutover::proxy {

struct CancelTarget {
  int shard = 0;
  std::uint64_t session_id = 0;
};

class CancelRegistry {
 public:
  struct Key {
    std::int32_t pid = 0;
    std::int32_t key = 0;
  };
  // Issues a fresh random (pid, key) not in use (random so that it cannot be guessed by
  // another client of the proxy, as PostgreSQL's own keys).
  Key issue(CancelTarget target);
  // The same with a pid of the caller's choosing (the server's, session mode) and a random
  // key: unique with the key, whatever other session has that pid on another backend.
  Key issue(CancelTarget target, std::int32_t pid);
  void remove(Key key);
  std::optional<CancelTarget> find(Key key) const;
  std::size_t size() const;
  // Whether some live session was given `pid` by the proxy itself (not a server's pid: those
  // are at most 2^22 on Linux, the proxy's are random 31-bit). A scan: for rare paths only.
  bool issued_own_pid(std::int32_t pid) const;

 private:
  static std::uint64_t pack(Key k) {
    return (std::uint64_t(std::uint32_t(k.pid)) << 32) | std::uint32_t(k.key);
  }
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, CancelTarget> entries_;
};

}  // namespace pgcutover::proxy
