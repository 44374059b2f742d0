// Preflight for [routes.*]: followers and read replicas flip with the primary, so
// before the cutover each route's backends must be reachable replicas, their replay lag known
// on both sides, and nobody may still read the Heroku follower directly (a dashboard left
// there keeps reading the dead database after the cutover).
#pragma once

#include <vector>

#include "control/command/check.h"
#include "control/command/settings.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

// One check per route ("route_<name>"): each side's backend (in recovery?, replay lag in
// seconds and bytes), the primaries' pg_stat_replication, and client sessions on the source
// side's backend that do not come from the proxies (settings.proxy_addrs).
std::vector<Check> check_routes(PgConn& source, PgConn& target, const ControlSettings& settings);

}  // namespace pgcutover::control
