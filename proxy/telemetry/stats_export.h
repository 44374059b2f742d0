// Copies the data plane's atomic counters (proxy/telemetry/stats.h) into the Prometheus families
// (proxy/telemetry/metrics.h) when /metrics is scraped: the hot path keeps doing relaxed increments
// and never touches prometheus-cpp. Counters advance by the difference since the last scrape.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "proxy/telemetry/metrics.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {

class StatsExporter {
 public:
  explicit StatsExporter(Metrics& metrics) : metrics_(metrics) {}
  // `backend`: the active backend, whose server connection gauges the pool counts feed.
  void refresh(const Stats& stats, const std::string& backend);

 private:
  void advance(prometheus::Counter& counter, std::uint64_t now, std::uint64_t& last);

  Metrics& metrics_;
  std::mutex mutex_;  // scrapes may overlap
  std::uint64_t transactions_ = 0, queries_ = 0;
  std::array<std::uint64_t, 4> bytes_{};
  std::uint64_t prepared_hits_ = 0, prepared_misses_ = 0;
  std::uint64_t tls_client_ok_ = 0, tls_server_ok_ = 0, tls_errors_ = 0;
  std::array<std::uint64_t, Stats::kErrorClasses> errors_{};
  std::string last_backend_;
  std::map<std::string, std::uint64_t> auth_failures_;  // by backend, at the last scrape
};

}  // namespace pgcutover::proxy
