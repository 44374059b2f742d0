#include "proxy/telemetry/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>

namespace pgcutover::proxy {
namespace {

constexpr MetricType kCounterKind = MetricType::kCounter;
constexpr MetricType kGaugeKind = MetricType::kGauge;
constexpr MetricType kHistogramKind = MetricType::kHistogram;

constexpr MetricFamilyInfo kFamilies[] = {
#define PGCUTOVER_METRIC_FAMILY_INFO(member, Type, name, help) {name, k##Type##Kind, help},
    PGCUTOVER_METRIC_FAMILIES(PGCUTOVER_METRIC_FAMILY_INFO)
#undef PGCUTOVER_METRIC_FAMILY_INFO
};

// SQLSTATE classes of PostgreSQL (Appendix A, "PostgreSQL Error Codes"). Anything else is
// counted as "other" so label cardinality stays bounded whatever a server sends.
constexpr std::string_view kSqlstateClasses[] = {
    "00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22",
    "23", "24", "25", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F",
    "40", "42", "44", "53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX"};
constexpr std::size_t kOtherClass = std::size(kSqlstateClasses);

// Transactions and queries: sub-millisecond to a minute.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
// Pauses and flips: the target is under 250 ms, the dead-man timer bounds them (30 s default).
const prometheus::Histogram::BucketBoundaries kPauseBuckets = {
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

}  // namespace

std::string_view to_string(ClientStateLabel s) {
  switch (s) {
    case ClientStateLabel::kActive:
      return "active";
    case ClientStateLabel::kIdle:
      return "idle";
    case ClientStateLabel::kWaiting:
      return "waiting";
    case ClientStateLabel::kHeld:
      return "held";
    case ClientStateLabel::kLogin:
      return "login";
  }
  return "unknown";
}

std::string_view to_string(ServerStateLabel s) {
  switch (s) {
    case ServerStateLabel::kActive:
      return "active";
    case ServerStateLabel::kIdle:
      return "idle";
    case ServerStateLabel::kLogin:
      return "login";
    case ServerStateLabel::kTested:
      return "tested";
  }
  return "unknown";
}

std::span<const MetricFamilyInfo> Metrics::families() {
  return kFamilies;
}

Metrics::Metrics(const std::vector<std::string>& backends)
    : registry_(std::make_shared<prometheus::Registry>()) {
#define PGCUTOVER_METRIC_FAMILY_REGISTER(member, Type, name, help) \
  member##_family_ = &prometheus::Build##Type().Name(name).Help(help).Register(*registry_);
  PGCUTOVER_METRIC_FAMILIES(PGCUTOVER_METRIC_FAMILY_REGISTER)
#undef PGCUTOVER_METRIC_FAMILY_REGISTER

  for (std::size_t i = 0; i < kClientStates; ++i) {
    client_connections_[i] = &client_connections_family_->Add(
        {{"state", std::string(to_string(static_cast<ClientStateLabel>(i)))}});
  }
  held_clients_ = &held_clients_family_->Add({});
  transactions_ = &transactions_family_->Add({});
  queries_ = &queries_family_->Add({});
  transaction_duration_ = &transaction_duration_family_->Add({}, kLatencyBuckets);
  query_duration_ = &query_duration_family_->Add({}, kLatencyBuckets);
  pause_duration_ = &pause_duration_family_->Add({}, kPauseBuckets);
  flip_duration_ = &flip_duration_family_->Add({}, kPauseBuckets);
  pause_client_wait_worst_ = &pause_client_wait_family_->Add({{"stat", "worst"}});
  pause_client_wait_p99_ = &pause_client_wait_family_->Add({{"stat", "p99"}});
  const char* sides[] = {"client", "server"};
  const char* directions[] = {"received", "sent"};
  const char* results[] = {"ok", "error"};
  for (std::size_t s = 0; s < 2; ++s) {
    for (std::size_t d = 0; d < 2; ++d) {
      bytes_[s * 2 + d] = &network_family_->Add({{"side", sides[s]}, {"direction", directions[d]}});
      tls_[s * 2 + d] = &tls_handshakes_family_->Add({{"side", sides[s]}, {"result", results[d]}});
    }
  }
  for (auto cls : kSqlstateClasses) {
    errors_by_class_.push_back(&errors_family_->Add({{"class", std::string(cls)}}));
  }
  errors_by_class_.push_back(&errors_family_->Add({{"class", "other"}}));
  pinned_sessions_ = &pinned_sessions_family_->Add({});
  epoch_ = &epoch_family_->Add({});
  prepared_cache_hits_ = &prepared_cache_hits_family_->Add({});
  prepared_cache_misses_ = &prepared_cache_misses_family_->Add({});
  read_only_ = &read_only_family_->Add({});
  replication_lag_bytes_ = &replication_lag_bytes_family_->Add({});
  replication_lag_seconds_ = &replication_lag_seconds_family_->Add({});
  replication_lag_measured_ = &replication_lag_measured_family_->Add({});
  replication_ok_ = &replication_ok_family_->Add({});
  replication_direction_[0] = &replication_direction_family_->Add({{"direction", "forward"}});
  replication_direction_[1] = &replication_direction_family_->Add({{"direction", "reverse"}});
  for (std::size_t i = 0; i < kCutoverStateCount; ++i) {
    cutover_state_[i] = &cutover_state_family_->Add(
        {{"state", std::string(to_string(static_cast<CutoverState>(i)))}});
  }
  set_cutover_state(CutoverState::kRunning);
  // Pre-create the success series so the family is exposed (with zeros) before any command.
  for (const char* command : {"pause", "resume", "flip", "revert", "readonly", "prewarm"}) {
    cutover_commands_family_->Add({{"command", command}, {"result", "ok"}});
  }
  for (const auto& b : backends) add_backend(b);
}

BackendMetrics& Metrics::add_backend(const std::string& name) {
  std::lock_guard lock(backends_mu_);
  auto it = backends_.find(name);
  if (it != backends_.end()) return *it->second;
  auto m = std::make_unique<BackendMetrics>();
  m->name = name;
  for (std::size_t i = 0; i < kServerStates; ++i) {
    m->server_connections[i] = &server_connections_family_->Add(
        {{"backend", name}, {"state", std::string(to_string(static_cast<ServerStateLabel>(i)))}});
  }
  m->auth_failures = &backend_auth_failures_family_->Add({{"backend", name}});
  m->active = &active_backend_family_->Add({{"backend", name}});
  return *backends_.emplace(name, std::move(m)).first->second;
}

BackendMetrics* Metrics::backend(std::string_view name) {
  std::lock_guard lock(backends_mu_);
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second.get();
}

prometheus::Counter& Metrics::errors(std::string_view sqlstate) {
  std::size_t index = kOtherClass;
  if (sqlstate.size() >= 2) {
    auto cls = sqlstate.substr(0, 2);
    // 43 entries, two-byte compares: cheaper than hashing and needs no lock.
    for (std::size_t i = 0; i < kOtherClass; ++i) {
      if (kSqlstateClasses[i] == cls) {
        index = i;
        break;
      }
    }
  }
  return *errors_by_class_[index];
}

void Metrics::set_active_backend(const std::string& name) {
  add_backend(name);
  std::lock_guard lock(backends_mu_);
  for (auto& [n, m] : backends_) m->active->Set(n == name ? 1 : 0);
}

void Metrics::set_cutover_state(CutoverState s) {
  for (std::size_t i = 0; i < kCutoverStateCount; ++i) {
    cutover_state_[i]->Set(i == static_cast<std::size_t>(s) ? 1 : 0);
  }
}

void Metrics::count_command(std::string_view command, std::string_view result) {
  // Family::Add returns the existing series for known labels; both label values come from
  // fixed sets in the cutover engine, so cardinality stays bounded.
  cutover_commands_family_
      ->Add({{"command", std::string(command)}, {"result", std::string(result)}})
      .Increment();
}

void Metrics::publish_lag(bool ok, std::optional<double> bytes, std::optional<double> seconds,
                          std::string_view direction, double measured_at_unix) {
  // A reading that could not measure keeps the last figures: the ok gauge says they are old.
  replication_ok_->Set(ok ? 1 : 0);
  if (ok && bytes) replication_lag_bytes_->Set(*bytes);
  if (ok && seconds) replication_lag_seconds_->Set(*seconds);
  replication_lag_measured_->Set(measured_at_unix);
  if (!direction.empty()) {
    replication_direction_[0]->Set(direction == "forward" ? 1 : 0);
    replication_direction_[1]->Set(direction == "reverse" ? 1 : 0);
  }
}

std::string Metrics::render_text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace pgcutover::proxy
