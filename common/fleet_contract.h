// The fleet's control channel, as both programs see it (docs/fleet.md): proxies that no
// controller can reach (Heroku dynos, autoscaled pods) take their commands through the
// databases. Everything lives in the pgcutover schema of the source and of the target, created
// by `pgcutoverctl fleet setup` with the application owner's rights only:
//
//   fleet_member     one row per proxy that ever registered; it is live while its control
//                    session holds the advisory lock (kFleetLockClass, lock_key), so a proxy
//                    that dies leaves the fleet the moment PostgreSQL ends its session
//   fleet_command    what the controller asks (an admin API call: method, path, body), to one
//                    member or to '*', valid until expires_at; NOTIFY pgcutover_fleet on insert
//   fleet_ack        each member's answer (HTTP status and body, as the admin API would give)
//   fleet_authority  which backend is active at which epoch: written by the flip before any
//                    gate opens on the destination, read by every proxy before its first client
//
// The same command goes to both databases under one key; a proxy runs it once and answers on
// each database it read it from, so either database alone carries the fleet.
#pragma once

#include <string>
#include <string_view>

namespace pgcutover::fleet {

// pg_try_advisory_lock(kFleetLockClass, lock_key): 'pgcu' as an int4. A member's lock_key is
// 1 or more; controllers hold (kFleetLockClass, 0) shared. Any session holding a lock of this
// class is a control session: the fence spares it (it writes only the pgcutover schema).
inline constexpr int kFleetLockClass = 0x70676375;
inline constexpr std::string_view kCommandChannel = "pgcutover_fleet";
inline constexpr std::string_view kAckChannel = "pgcutover_fleet_ack";
// What every control session calls itself (pg_stat_activity.application_name).
inline constexpr std::string_view kApplicationName = "pgcutover-fleet";

// The schema, idempotent (IF NOT EXISTS throughout): one script for `fleet setup`.
std::string_view schema_sql();

// A member name: 1-63 of [A-Za-z0-9._:@-]. Names go into SQL literals and logs.
bool valid_member_name(std::string_view name);
// 'text' with quotes doubled (standard_conforming_strings on); NUL bytes are dropped.
std::string quote_literal(std::string_view text);

}  // namespace pgcutover::fleet
