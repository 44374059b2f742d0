#include "proxy/telemetry/stats_export.h"

#include "proxy/settings/backend_secret.h"

namespace pgcutover::proxy {

void StatsExporter::advance(prometheus::Counter& counter, std::uint64_t now, std::uint64_t& last) {
  if (now > last) counter.Increment(static_cast<double>(now - last));
  last = now;
}

void StatsExporter::refresh(const Stats& s, const std::string& backend) {
  std::lock_guard lock(mutex_);
  auto gauge = [](const Stats::Gauge& g) { return static_cast<double>(g.load()); };
  auto client = [&](ClientState from, ClientStateLabel to) {
    metrics_.client_connections(to).Set(gauge(s.clients[static_cast<std::size_t>(from)]));
  };
  client(ClientState::kActive, ClientStateLabel::kActive);
  client(ClientState::kIdle, ClientStateLabel::kIdle);
  client(ClientState::kWaiting, ClientStateLabel::kWaiting);
  client(ClientState::kHeld, ClientStateLabel::kHeld);
  client(ClientState::kLogin, ClientStateLabel::kLogin);
  metrics_.held_clients().Set(gauge(s.held_clients));
  metrics_.pinned_sessions().Set(gauge(s.pinned_sessions));

  // Server connections belong to the active backend: a flip closes the old backend's.
  if (!last_backend_.empty() && last_backend_ != backend) {
    if (BackendMetrics* old = metrics_.backend(last_backend_)) {
      for (auto st : {ServerStateLabel::kActive, ServerStateLabel::kIdle, ServerStateLabel::kLogin})
        old->connections(st).Set(0);
    }
  }
  last_backend_ = backend;
  BackendMetrics& b = metrics_.add_backend(backend);
  b.connections(ServerStateLabel::kActive)
      .Set(gauge(s.servers[static_cast<std::size_t>(ServerState::kActive)]));
  b.connections(ServerStateLabel::kIdle)
      .Set(gauge(s.servers[static_cast<std::size_t>(ServerState::kIdle)]));
  b.connections(ServerStateLabel::kLogin)
      .Set(gauge(s.servers[static_cast<std::size_t>(ServerState::kLogin)]));

  advance(metrics_.transactions(), s.transactions_total.load(), transactions_);
  advance(metrics_.queries(), s.queries_total.load(), queries_);
  advance(metrics_.bytes(Side::kClient, Direction::kReceived), s.client_bytes_received.load(),
          bytes_[0]);
  advance(metrics_.bytes(Side::kClient, Direction::kSent), s.client_bytes_sent.load(), bytes_[1]);
  advance(metrics_.bytes(Side::kServer, Direction::kReceived), s.server_bytes_received.load(),
          bytes_[2]);
  advance(metrics_.bytes(Side::kServer, Direction::kSent), s.server_bytes_sent.load(), bytes_[3]);
  advance(metrics_.tls_handshakes(Side::kClient, TlsResult::kOk),
          s.client_tls_handshakes_total.load(), tls_client_ok_);
  advance(metrics_.tls_handshakes(Side::kServer, TlsResult::kOk),
          s.server_tls_handshakes_total.load(), tls_server_ok_);
  // Stats does not say which side a failed handshake was on; clients are the usual source.
  advance(metrics_.tls_handshakes(Side::kClient, TlsResult::kError),
          s.tls_handshake_failures_total.load(), tls_errors_);

  for (const auto& [name, count] : backend_auth_failure_counts()) {
    BackendMetrics& m = metrics_.add_backend(name);
    advance(*m.auth_failures, count, auth_failures_[name]);
  }

  advance(metrics_.prepared_cache_hits(), s.prepared_cache_hits.load(), prepared_hits_);
  advance(metrics_.prepared_cache_misses(), s.prepared_cache_misses.load(), prepared_misses_);

  // Error classes: index c0 * 36 + c1 back to the two class characters.
  auto ch = [](std::size_t v) { return static_cast<char>(v < 10 ? '0' + v : 'A' + (v - 10)); };
  for (std::size_t i = 0; i < Stats::kErrorClasses; ++i) {
    std::uint64_t now = s.errors_by_class[i].load(std::memory_order_relaxed);
    if (now == errors_[i]) continue;
    std::string sqlstate = i + 1 == Stats::kErrorClasses
                               ? std::string("?????")
                               : std::string{ch(i / 36), ch(i % 36), '0', '0', '0'};
    advance(metrics_.errors(sqlstate), now, errors_[i]);
  }
}

}  // namespace pgcutover::proxy
