// Session parameters that must follow a client from one server connection to the next
// (transaction pooling): what the client asked for in its startup packet, and what the server
// reported with ParameterStatus after the client's own SETs. When a client gets a server
// connection whose values differ, the proxy sends one Query of SETs/RESETs before the client's
// first message and swallows its responses (DESIGN-NOTES "Transaction pooling").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/framing.h"

namespace pgcutover::proxy {

// GUC names are case-insensitive in PostgreSQL ("datestyle" and "DateStyle" are one setting).
struct GucNameLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};
using ParamMap = std::map<std::string, std::string, GucNameLess>;

// Reported parameters that a client can change and that every client's desired settings
// carry (from the welcome it was told), so a sync always sets them. Not
// default_transaction_read_only: the cutover fences the source with ALTER ROLE ... SET
// default_transaction_read_only, and a sync must never undo that; a client that asks for it
// gets it as an override (RESET for the next client, back to the fenced login default).
bool is_tracked_reported(std::string_view name);

// Startup parameters that are not settings: user, database, replication, options (parsed
// separately), and protocol extensions (_pq_.*).
bool is_startup_only(std::string_view name);

// Settings the client asked for in its startup packet, including "-c name=value" and
// "--name=value" items from `options`.
ParamMap startup_settings(const protocol::StartupPacket& startup);

// What a client believes its settings are (the welcome parameters it was told, its startup
// settings, then what its SETs changed), and the same serialized: ServerConnection::synced_for
// holds the key a connection was last brought in line with. Shared copy-on-write between the
// clients that logged in alike (ServerPool::login_settings): 10,000 idle clients hold one copy,
// not 10,000 (docs/benchmarks.md, idle clients).
struct DesiredSettings {
  ParamMap params;
  std::string key;
  bool interned = false;  // in a pool's table for later logins: never edited in place
  void rekey();
};

// What a server connection is known to have: the values the server reports, and the settings
// moved off the connection's login defaults for one client (by the proxy's sync, by the
// client's own SET, or by read-only mode) that are not in every client's desired settings:
// extra_float_digits, statement_timeout via options, search_path where the server does not
// report it, default_transaction_read_only. A client that does not ask for one of those gets
// it RESET (back to the login default, which includes the role's settings and so the fence);
// otherwise one client's read-only default or search_path would reach the next client.
struct ServerParams {
  ParamMap reported;
  ParamMap overrides;
};

// The SQL to bring `server` in line with `desired`, or "" when they already agree. `changed`
// receives the names that are SET (their server-reported normal form is then copied back into
// the client's map, so "ISO" becomes "ISO, MDY" once and never triggers a SET again).
// Names that are not plain identifiers are skipped (logged by the caller).
std::string build_sync_query(const ParamMap& desired, const ServerParams& server,
                             std::vector<std::string>& changed, std::vector<std::string>& reset);

// 'value' quoted as an SQL string literal that means the same with
// standard_conforming_strings on or off.
std::string quote_literal(std::string_view value);
bool is_plain_identifier(std::string_view name);

}  // namespace pgcutover::proxy
