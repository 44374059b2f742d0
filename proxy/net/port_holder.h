// Who listens on a TCP port, read from /proc: what an operator needs when the proxy cannot take
// its port ("pid 4242 (pgcutover-proxy)"). Sockets of processes this user may not inspect are
// found in /proc/net but not matched to a pid; then the answer says so.
#pragma once

#include <cstdint>
#include <string>

namespace pgcutover::proxy {

// "pid 4242 (pgcutover-proxy)", "pids 10, 11 (pgbouncer)", "a process this user cannot
// inspect", or "" when nothing listens on `port` (any address, IPv4 or IPv6).
std::string describe_port_holder(std::uint16_t port);

}  // namespace pgcutover::proxy
