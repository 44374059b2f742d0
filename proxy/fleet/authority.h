// Which backend the fleet is on, as the databases say (pgcutover.fleet_authority, written by
// every flip before a gate opens on the destination). Read by a proxy with [fleet] before it
// accepts its first client, so a dyno that starts after a flip lands where the others are with
// its configuration unchanged; the state file is only the fallback when no database answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

struct AuthorityReading {
  std::string channel_backend;  // the database it was read from
  bool answered = false;        // the query ran (the record may still be absent)
  std::optional<std::string> backend;
  std::uint64_t epoch = 0;
  std::string error;
};

// Reads the record from every [fleet] channel database at once, all within `timeout`.
std::vector<AuthorityReading> read_fleet_authority(const Settings& settings,
                                                   std::chrono::milliseconds timeout);

// The reading with the highest epoch, if any database had a record.
std::optional<AuthorityReading> highest_authority(const std::vector<AuthorityReading>& readings);

}  // namespace pgcutover::proxy
