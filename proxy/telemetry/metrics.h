// Prometheus metrics of pgcutover-proxy, built with prometheus-cpp (core only: the admin
// server serves GET /metrics itself, so no civetweb).
//
// Every family is declared once, in PGCUTOVER_METRIC_FAMILIES below, with its help text
// (Envoy's stats macros). Names follow Prometheus conventions: pgcutover_<noun>_<unit>, counters
// end in _total, durations are seconds, sizes are bytes.
//
// Hot path: every accessor returns a reference created once at start-up (or when a backend is
// registered), so incrementing a counter never builds a label set or looks anything up.
// prometheus-cpp metrics are thread-safe, so any shard may touch them.
//
// Secrets: labels only ever carry backend *names* from the config ("source", "target"), states
// and SQLSTATE classes; never a URL, host, user or password.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cutover/cutover_engine.h"

namespace pgcutover::proxy {

// X(member, Type, "name", "help"). Type is Counter, Gauge or Histogram.
#define PGCUTOVER_METRIC_FAMILIES(X)                                                             \
  X(client_connections, Gauge, "pgcutover_client_connections",                                   \
    "Client connections by state (active: has a server connection; idle: between "               \
    "transactions; waiting: queued for a server connection; held: paused by a cutover; "         \
    "login: startup/authentication).")                                                           \
  X(server_connections, Gauge, "pgcutover_server_connections",                                   \
    "Server connections by backend name and state (active, idle, login, tested).")               \
  X(held_clients, Gauge, "pgcutover_held_clients",                                               \
    "Clients whose next transaction is held while the proxy is paused.")                         \
  X(transactions, Counter, "pgcutover_transactions_total",                                       \
    "Transactions completed through the proxy.")                                                 \
  X(queries, Counter, "pgcutover_queries_total", "Queries (simple Query or Sync) relayed.")      \
  X(transaction_duration, Histogram, "pgcutover_transaction_duration_seconds",                   \
    "Time a client held a server connection for one transaction, in seconds.")                   \
  X(query_duration, Histogram, "pgcutover_query_duration_seconds",                               \
    "Time from a query to its ReadyForQuery, in seconds.")                                       \
  X(pause_duration, Histogram, "pgcutover_pause_duration_seconds",                               \
    "Time new transactions were held by one pause (gate closed to gate open), in seconds.")      \
  X(pause_client_wait, Gauge, "pgcutover_pause_client_wait_seconds",                             \
    "What the clients held by the last pause waited, from their message reaching the closed "    \
    "gate to the first byte of their answer, in seconds (stat: worst, p99).")                    \
  X(flip_duration, Histogram, "pgcutover_flip_duration_seconds",                                 \
    "Time from the start of a flip (drained) to the held clients being released, in seconds.")   \
  X(network, Counter, "pgcutover_network_bytes_total",                                           \
    "Bytes through the proxy by side (client, server) and direction (received, sent).")          \
  X(errors, Counter, "pgcutover_errors_total",                                                   \
    "ErrorResponses seen or sent, by SQLSTATE class (first two characters; other when not a "    \
    "standard class).")                                                                          \
  X(tls_handshakes, Counter, "pgcutover_tls_handshakes_total",                                   \
    "TLS handshakes by side (client, server) and result (ok, error).")                           \
  X(pinned_sessions, Gauge, "pgcutover_pinned_sessions",                                         \
    "Client sessions pinned to one server connection (LISTEN, temp tables, advisory locks, "     \
    "WITH HOLD cursors, SQL PREPARE).")                                                          \
  X(active_backend, Gauge, "pgcutover_active_backend_info",                                      \
    "1 for the backend new server connections go to, 0 for the other configured backends.")      \
  X(epoch, Gauge, "pgcutover_epoch", "Cutover epoch: incremented by every flip, persisted.")     \
  X(prepared_cache_hits, Counter, "pgcutover_prepared_statement_cache_hits_total",               \
    "Client prepared statements already prepared on the server connection they ran on.")         \
  X(prepared_cache_misses, Counter, "pgcutover_prepared_statement_cache_misses_total",           \
    "Client prepared statements the proxy had to (re)prepare on a server connection.")           \
  X(cutover_state, Gauge, "pgcutover_cutover_state",                                             \
    "1 for the current cutover state (running, pausing, paused, flipping), 0 for the others.")   \
  X(read_only, Gauge, "pgcutover_read_only", "1 while read-only mode is on (writes get 25006).") \
  X(replication_lag_bytes, Gauge, "pgcutover_replication_lag_bytes",                             \
    "Replication lag in bytes, as last published by `pgcutoverctl lag --watch --publish` "       \
    "(logical method; direction in pgcutover_replication_direction).")                           \
  X(replication_lag_seconds, Gauge, "pgcutover_replication_lag_seconds",                         \
    "Replication lag in seconds, as last published by `pgcutoverctl lag --watch --publish`.")    \
  X(replication_lag_measured, Gauge, "pgcutover_replication_lag_measured_timestamp_seconds",     \
    "Unix time of the last published lag reading; 0 until one arrives.")                         \
  X(replication_ok, Gauge, "pgcutover_replication_ok",                                           \
    "1 when the last published reading could measure the replication, 0 when it could not "      \
    "(no slot, no subscriber, capture broken) or before any reading.")                           \
  X(replication_direction, Gauge, "pgcutover_replication_direction",                             \
    "1 for the direction of the last published reading (forward: source to target; reverse: "    \
    "target to source, after a flip), 0 for the other.")                                         \
  X(backend_auth_failures, Counter, "pgcutover_backend_auth_failures_total",                     \
    "Authentication failures of the proxy against a backend, by backend name.")                  \
  X(cutover_commands, Counter, "pgcutover_cutover_commands_total",                               \
    "Cutover commands by command (pause, resume, flip, revert, readonly, prewarm, dead_man) "    \
    "and result (ok or an error code).")

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricFamilyInfo {
  std::string_view name;
  MetricType type;
  std::string_view help;
};

enum class ClientStateLabel { kActive, kIdle, kWaiting, kHeld, kLogin };
inline constexpr std::size_t kClientStates = 5;
enum class ServerStateLabel { kActive, kIdle, kLogin, kTested };
inline constexpr std::size_t kServerStates = 4;
enum class Side { kClient, kServer };
enum class Direction { kReceived, kSent };
enum class TlsResult { kOk, kError };

std::string_view to_string(ClientStateLabel s);
std::string_view to_string(ServerStateLabel s);

// Metrics of one configured backend, created by Metrics::add_backend(). Pools cache a pointer.
struct BackendMetrics {
  std::string name;
  std::array<prometheus::Gauge*, kServerStates> server_connections{};
  prometheus::Counter* auth_failures = nullptr;
  prometheus::Gauge* active = nullptr;

  prometheus::Gauge& connections(ServerStateLabel s) const {
    return *server_connections[static_cast<std::size_t>(s)];
  }
};

class Metrics {
 public:
  // `backends`: configured backend names (never URLs). More can be added with add_backend().
  explicit Metrics(const std::vector<std::string>& backends = {});
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Every family, in declaration order (docs and tests use it).
  static std::span<const MetricFamilyInfo> families();

  // Registers a backend (idempotent) and returns its metrics; the reference stays valid for the
  // life of this object. Takes a lock: call at start-up or pool creation, not per query.
  BackendMetrics& add_backend(const std::string& name);
  // nullptr when the backend was never added. Takes a lock.
  BackendMetrics* backend(std::string_view name);

  prometheus::Gauge& client_connections(ClientStateLabel s) {
    return *client_connections_[static_cast<std::size_t>(s)];
  }
  prometheus::Gauge& held_clients() { return *held_clients_; }
  prometheus::Counter& transactions() { return *transactions_; }
  prometheus::Counter& queries() { return *queries_; }
  prometheus::Histogram& transaction_duration() { return *transaction_duration_; }
  prometheus::Histogram& query_duration() { return *query_duration_; }
  prometheus::Histogram& pause_duration() { return *pause_duration_; }
  prometheus::Histogram& flip_duration() { return *flip_duration_; }
  prometheus::Gauge& pause_client_wait_worst() { return *pause_client_wait_worst_; }
  prometheus::Gauge& pause_client_wait_p99() { return *pause_client_wait_p99_; }
  prometheus::Counter& bytes(Side side, Direction dir) {
    return *bytes_[static_cast<std::size_t>(side) * 2 + static_cast<std::size_t>(dir)];
  }
  // `sqlstate`: the 5-character code (or at least its class); anything that is not one of the
  // standard classes of PostgreSQL Appendix A counts as "other", so a hostile server cannot
  // create unbounded label values.
  prometheus::Counter& errors(std::string_view sqlstate);
  prometheus::Counter& tls_handshakes(Side side, TlsResult result) {
    return *tls_[static_cast<std::size_t>(side) * 2 + static_cast<std::size_t>(result)];
  }
  prometheus::Gauge& pinned_sessions() { return *pinned_sessions_; }
  prometheus::Gauge& epoch() { return *epoch_; }
  prometheus::Counter& prepared_cache_hits() { return *prepared_cache_hits_; }
  prometheus::Counter& prepared_cache_misses() { return *prepared_cache_misses_; }
  prometheus::Gauge& read_only() { return *read_only_; }
  prometheus::Gauge& replication_lag_bytes() { return *replication_lag_bytes_; }
  prometheus::Gauge& replication_lag_seconds() { return *replication_lag_seconds_; }
  // One published lag reading (POST /v1/replication_lag): the gauges above, when it was taken,
  // whether it measured anything, and its direction ("forward" or "reverse").
  void publish_lag(bool ok, std::optional<double> bytes, std::optional<double> seconds,
                   std::string_view direction, double measured_at_unix);

  // Sets pgcutover_active_backend_info to 1 for `name` (adding it if needed), 0 for the others.
  void set_active_backend(const std::string& name);
  void set_cutover_state(CutoverState s);
  // Counts one cutover command by command name and result code. Cold path (takes a lock).
  void count_command(std::string_view command, std::string_view result);

  // The whole registry in the Prometheus text exposition format 0.0.4.
  std::string render_text() const;
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;

#define PGCUTOVER_METRIC_FAMILY_MEMBER(member, Type, name, help) \
  prometheus::Family<prometheus::Type>* member##_family_ = nullptr;
  PGCUTOVER_METRIC_FAMILIES(PGCUTOVER_METRIC_FAMILY_MEMBER)
#undef PGCUTOVER_METRIC_FAMILY_MEMBER

  std::array<prometheus::Gauge*, kClientStates> client_connections_{};
  prometheus::Gauge* held_clients_ = nullptr;
  prometheus::Counter* transactions_ = nullptr;
  prometheus::Counter* queries_ = nullptr;
  prometheus::Histogram* transaction_duration_ = nullptr;
  prometheus::Histogram* query_duration_ = nullptr;
  prometheus::Histogram* pause_duration_ = nullptr;
  prometheus::Histogram* flip_duration_ = nullptr;
  prometheus::Gauge* pause_client_wait_worst_ = nullptr;
  prometheus::Gauge* pause_client_wait_p99_ = nullptr;
  std::array<prometheus::Counter*, 4> bytes_{};
  std::array<prometheus::Counter*, 4> tls_{};
  // Index: position of the class in the standard list; the last slot is "other".
  std::vector<prometheus::Counter*> errors_by_class_;
  prometheus::Gauge* pinned_sessions_ = nullptr;
  prometheus::Gauge* epoch_ = nullptr;
  prometheus::Counter* prepared_cache_hits_ = nullptr;
  prometheus::Counter* prepared_cache_misses_ = nullptr;
  prometheus::Gauge* read_only_ = nullptr;
  prometheus::Gauge* replication_lag_bytes_ = nullptr;
  prometheus::Gauge* replication_lag_seconds_ = nullptr;
  prometheus::Gauge* replication_lag_measured_ = nullptr;
  prometheus::Gauge* replication_ok_ = nullptr;
  std::array<prometheus::Gauge*, 2> replication_direction_{};  // forward, reverse
  std::array<prometheus::Gauge*, kCutoverStateCount> cutover_state_{};

  std::mutex backends_mu_;  // guards backends_ (the metrics themselves are thread-safe)
  std::map<std::string, std::unique_ptr<BackendMetrics>, std::less<>> backends_;
};

}  // namespace pgcutover::proxy
