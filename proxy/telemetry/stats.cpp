#include "proxy/telemetry/stats.h"

#include <mutex>
#include <vector>

namespace pgcutover::proxy {

std::string_view to_string(ClientState s) {
  switch (s) {
    case ClientState::kLogin:
      return "login";
    case ClientState::kIdle:
      return "idle";
    case ClientState::kWaiting:
      return "waiting";
    case ClientState::kHeld:
      return "held";
    case ClientState::kActive:
      return "active";
    case ClientState::kClosing:
      return "closing";
  }
  return "unknown";
}

std::string_view to_string(ServerState s) {
  switch (s) {
    case ServerState::kLogin:
      return "login";
    case ServerState::kIdle:
      return "idle";
    case ServerState::kActive:
      return "active";
  }
  return "unknown";
}

void Stats::count_error(std::string_view sqlstate) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return 10 + (c - 'A');
    return -1;
  };
  std::size_t index = kErrorClasses - 1;
  if (sqlstate.size() == 5) {
    int a = digit(sqlstate[0]), b = digit(sqlstate[1]);
    if (a >= 0 && b >= 0) index = static_cast<std::size_t>(a * 36 + b);
  }
  errors_by_class[index].fetch_add(1, std::memory_order_relaxed);
}

namespace {

// Every set ever made, never freed: a shard's counters outlive its thread for the readers, and
// the sets are few (one per shard and the shared one). Reachable, so no leak is reported.
struct Registry {
  std::mutex mutex;
  std::vector<Stats*> sets;
};
Registry& registry() {
  static Registry* r = [] {
    auto* fresh = new Registry;
    fresh->sets.push_back(new Stats);  // the shared set, sets[0]
    return fresh;
  }();
  return *r;
}

thread_local Stats* own = nullptr;

}  // namespace

Stats& stats() {
  if (own) [[likely]]
    return *own;
  return *registry().sets.front();
}

void use_own_stats() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.sets.push_back(new Stats);
  own = r.sets.back();
}

void add_up_stats(Stats& out) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto add = [](auto& to, const auto& from) {
    to.fetch_add(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  for (const Stats* s : r.sets) {
    for (std::size_t i = 0; i < kClientStateCount; ++i) add(out.clients[i], s->clients[i]);
    for (std::size_t i = 0; i < kServerStateCount; ++i) add(out.servers[i], s->servers[i]);
    add(out.client_connections_total, s->client_connections_total);
    add(out.server_connections_total, s->server_connections_total);
    add(out.transactions_total, s->transactions_total);
    add(out.queries_total, s->queries_total);
    add(out.client_bytes_received, s->client_bytes_received);
    add(out.client_bytes_sent, s->client_bytes_sent);
    add(out.server_bytes_received, s->server_bytes_received);
    add(out.server_bytes_sent, s->server_bytes_sent);
    add(out.client_tls_handshakes_total, s->client_tls_handshakes_total);
    add(out.server_tls_handshakes_total, s->server_tls_handshakes_total);
    add(out.tls_handshake_failures_total, s->tls_handshake_failures_total);
    add(out.auth_failures_total, s->auth_failures_total);
    add(out.pool_waits_total, s->pool_waits_total);
    add(out.pool_wait_timeouts_total, s->pool_wait_timeouts_total);
    add(out.param_syncs_total, s->param_syncs_total);
    add(out.cancels_total, s->cancels_total);
    add(out.prepared_cache_hits, s->prepared_cache_hits);
    add(out.prepared_cache_misses, s->prepared_cache_misses);
    add(out.held_clients, s->held_clients);
    add(out.servers_in_transaction, s->servers_in_transaction);
    add(out.pinned_sessions, s->pinned_sessions);
    for (std::size_t i = 0; i < Stats::kErrorClasses; ++i)
      add(out.errors_by_class[i], s->errors_by_class[i]);
  }
}

std::int64_t stats_total(Stats::Gauge Stats::*gauge) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::int64_t sum = 0;
  for (const Stats* s : r.sets) sum += (s->*gauge).load(std::memory_order_relaxed);
  return sum;
}

}  // namespace pgcutover::proxy
