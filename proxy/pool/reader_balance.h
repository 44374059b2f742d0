// Read scaling on a route with several readers (Aurora readers, RDS read replicas): each new
// server assignment goes to the healthy reader with the fewest outstanding queries (server
// connections this pool has handed to clients on it), and a reader that fails a connection
// attempt is taken out for kReaderDownFor, then tried again by the next assignment (the
// connection attempt is the health check; a failed one is retried on another reader, so the
// client does not see it while one reader is left).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

inline constexpr std::chrono::seconds kReaderDownFor{5};

// Process-wide (every shard sees the same health). Logged once per transition.
void mark_reader_down(const std::string& backend, std::string_view why);
void mark_reader_up(const std::string& backend);
bool reader_is_up(const std::string& backend);

// Outstanding queries per reader (backend name), one table per pool.
class ReaderLoad {
 public:
  void add(const std::string& backend, int delta);
  int get(const std::string& backend) const;
  // Where the next tie-break starts: equally loaded readers take turns (at low concurrency
  // every reader has 0 outstanding, and "the first" would get everything).
  std::size_t next_turn() { return turn_++; }

 private:
  std::map<std::string, int, std::less<>> outstanding_;
  std::size_t turn_ = 0;
};

// The healthy reader with the least outstanding queries (ties in turn); when every reader is
// down, the least loaded of them all (better an attempt than a certain error).
const std::shared_ptr<const BackendEndpoint>& pick_reader(
    const std::vector<std::shared_ptr<const BackendEndpoint>>& readers, ReaderLoad& load);

}  // namespace pgcutover::proxy
