// Counters and gauges of the data plane as plain atomics: the hot path only does relaxed
// increments; proxy/telemetry/metrics.* and the admin API read them to export without touching the
// session code. One set per shard thread, so that no core increments a cache line another core
// writes (a transaction moves about a dozen of them), and one set for every other thread; the
// readers add them up.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace pgcutover::proxy {

// Client session states (PgBouncer's client lists). Changed in exactly one place:
// ClientSession::set_state().
enum class ClientState : std::uint8_t {
  kLogin,    // startup + authentication
  kIdle,     // logged in, no server connection, between transactions
  kWaiting,  // queued for a server connection
  kHeld,     // held at the gate by a cutover pause
  kActive,   // has a server connection
  kClosing,
};
inline constexpr std::size_t kClientStateCount = 6;
std::string_view to_string(ClientState s);

enum class ServerState : std::uint8_t {
  kLogin,   // connecting / TLS / authenticating
  kIdle,    // in the pool
  kActive,  // assigned to a client
};
inline constexpr std::size_t kServerStateCount = 3;
std::string_view to_string(ServerState s);

struct alignas(64) Stats {
  using Counter = std::atomic<std::uint64_t>;
  using Gauge = std::atomic<std::int64_t>;

  std::array<Gauge, kClientStateCount> clients{};
  std::array<Gauge, kServerStateCount> servers{};
  Counter client_connections_total{0};
  Counter server_connections_total{0};
  Counter transactions_total{0};  // server connection released in transaction mode, or
                                  // RFQ 'I' after a transaction in session mode
  Counter queries_total{0};       // Query and Sync messages relayed
  Counter client_bytes_received{0};
  Counter client_bytes_sent{0};
  Counter server_bytes_received{0};
  Counter server_bytes_sent{0};
  Counter client_tls_handshakes_total{0};
  Counter server_tls_handshakes_total{0};
  Counter tls_handshake_failures_total{0};
  Counter auth_failures_total{0};
  Counter pool_waits_total{0};  // a client had to queue for a server connection
  Counter pool_wait_timeouts_total{0};
  Counter param_syncs_total{0};      // SETs sent to bring a server connection in line
  Counter cancels_total{0};          // CancelRequests forwarded to a backend
  Counter prepared_cache_hits{0};    // a client statement was already prepared on its server
  Counter prepared_cache_misses{0};  // the proxy (re)prepared a client statement
  Gauge held_clients{0};             // waiting at a closed gate
  Gauge servers_in_transaction{0};   // server connections assigned and not idle
  Gauge pinned_sessions{0};          // sessions holding state that pins (session_state.h)
  // ErrorResponses sent or relayed to clients, by SQLSTATE class: the two class characters
  // (digit or upper-case letter, 0..35 each) as c0 * 36 + c1; the last index = malformed.
  static constexpr std::size_t kErrorClasses = 36 * 36 + 1;
  std::array<Counter, kErrorClasses> errors_by_class{};

  void count_error(std::string_view sqlstate);
};

// The calling thread's set: its shard's (after use_own_stats()), or the shared one.
Stats& stats();
// The calling thread counts into a set of its own from now on (each shard's thread, at start).
void use_own_stats();
// Every set added up into `out` (all zero before).
void add_up_stats(Stats& out);
// One gauge, added up over every set.
std::int64_t stats_total(Stats::Gauge Stats::*gauge);

}  // namespace pgcutover::proxy
