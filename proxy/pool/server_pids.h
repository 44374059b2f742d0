// Which backend processes this proxy holds connections to, per backend name: what a pause
// reports so that the controller's fence can spare them. Those sessions are quiet by
// construction (the gate is closed and nothing is in flight), and after a flip the pools
// never use them again (older epoch), so ending them only spends the pause's time and CPU on
// backend exits; every other session of the fenced roles still has to go.
// Process-wide and thread-safe: connections open and close on every shard.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace pgcutover::proxy {

class ServerPids {
 public:
  // Held by the connection: removes its entry when destroyed. Move-only.
  class Entry {
   public:
    Entry() = default;
    Entry(Entry&& o) noexcept : owner_(o.owner_), id_(o.id_) { o.owner_ = nullptr; }
    Entry& operator=(Entry&& o) noexcept;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();

   private:
    friend class ServerPids;
    Entry(ServerPids* owner, std::uint64_t id) : owner_(owner), id_(id) {}
    ServerPids* owner_ = nullptr;
    std::uint64_t id_ = 0;
  };

  Entry add(std::string backend, std::int32_t pid);
  // The backend pids of the live connections to `backend`, ascending.
  std::vector<std::int32_t> on(const std::string& backend) const;

 private:
  void remove(std::uint64_t id);

  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::pair<std::string, std::int32_t>> live_;
};

ServerPids& server_pids();

}  // namespace pgcutover::proxy
