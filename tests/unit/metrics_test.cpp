// Metrics: every declared family is exposed, names follow the Prometheus conventions, label
// values stay bounded and no secret can reach a label.
#include "proxy/telemetry/metrics.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

namespace pgcutover::proxy {
namespace {

// Every family in the list shows up in the text exposition with HELP and TYPE lines.
TEST(Metrics, RendersEveryDeclaredFamily) {
  Metrics m({"source", "target"});
  std::string text = m.render_text();
  for (const auto& f : Metrics::families()) {
    EXPECT_NE(text.find("# HELP " + std::string(f.name) + " "), std::string::npos) << f.name;
    EXPECT_NE(text.find("# TYPE " + std::string(f.name) + " "), std::string::npos) << f.name;
  }
}

// Naming: pgcutover_ prefix, counters end in _total, histograms in a base unit, unique names.
TEST(Metrics, FamilyNamesFollowConventions) {
  std::set<std::string_view> seen;
  for (const auto& f : Metrics::families()) {
    EXPECT_TRUE(seen.insert(f.name).second) << "duplicate " << f.name;
    EXPECT_EQ(f.name.rfind("pgcutover_", 0), 0u) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    bool total = f.name.ends_with("_total");
    EXPECT_EQ(total, f.type == MetricType::kCounter) << f.name;
    if (f.type == MetricType::kHistogram) {
      EXPECT_TRUE(f.name.ends_with("_seconds")) << f.name;
    }
  }
}

// Accessors return cached series: the same reference every call, and increments show up.
TEST(Metrics, AccessorsAreCachedAndCount) {
  Metrics m({"source"});
  EXPECT_EQ(&m.transactions(), &m.transactions());
  EXPECT_EQ(&m.client_connections(ClientStateLabel::kHeld),
            &m.client_connections(ClientStateLabel::kHeld));
  m.transactions().Increment();
  m.transactions().Increment();
  m.client_connections(ClientStateLabel::kHeld).Set(3);
  m.bytes(Side::kClient, Direction::kReceived).Increment(100);
  m.tls_handshakes(Side::kServer, TlsResult::kError).Increment();
  m.pause_duration().Observe(0.12);
  m.add_backend("source").connections(ServerStateLabel::kIdle).Set(7);
  std::string text = m.render_text();
  EXPECT_NE(text.find("pgcutover_transactions_total 2"), std::string::npos) << text;
  EXPECT_NE(text.find("pgcutover_client_connections{state=\"held\"} 3"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_network_bytes_total{direction=\"received\",side=\"client\"} 100"),
            std::string::npos);
  EXPECT_NE(text.find("pgcutover_tls_handshakes_total{result=\"error\",side=\"server\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("pgcutover_server_connections{backend=\"source\",state=\"idle\"} 7"),
            std::string::npos);
  EXPECT_NE(text.find("pgcutover_pause_duration_seconds_count 1"), std::string::npos);
}

// SQLSTATE classes: standard ones get their own series, anything else (a hostile server's
// invented codes) lands in "other" so cardinality is bounded.
TEST(Metrics, ErrorsBySqlstateClassBounded) {
  Metrics m;
  m.errors("28P01").Increment();
  m.errors("53300").Increment();
  m.errors("ZZ999").Increment();
  m.errors("\x01\x02").Increment();
  m.errors("").Increment();
  EXPECT_EQ(&m.errors("28000"), &m.errors("28P01"));
  std::string text = m.render_text();
  EXPECT_NE(text.find("pgcutover_errors_total{class=\"28\"} 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_errors_total{class=\"53\"} 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_errors_total{class=\"other\"} 3"), std::string::npos);
  EXPECT_EQ(text.find("ZZ"), std::string::npos);
}

// Active backend info: exactly one backend is 1, the others 0.
TEST(Metrics, ActiveBackendInfoIsExclusive) {
  Metrics m({"source", "target"});
  m.set_active_backend("source");
  m.set_active_backend("target");
  std::string text = m.render_text();
  EXPECT_NE(text.find("pgcutover_active_backend_info{backend=\"target\"} 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_active_backend_info{backend=\"source\"} 0"), std::string::npos);
  m.set_cutover_state(CutoverState::kPaused);
  text = m.render_text();
  EXPECT_NE(text.find("pgcutover_cutover_state{state=\"paused\"} 1"), std::string::npos);
  EXPECT_NE(text.find("pgcutover_cutover_state{state=\"running\"} 0"), std::string::npos);
}

// Nothing in the exposition looks like a connection string or credential.
TEST(Metrics, NoSecretsInExposition) {
  Metrics m({"source", "target"});
  m.count_command("flip", "ok");
  std::string text = m.render_text();
  EXPECT_EQ(text.find("postgres://"), std::string::npos);
  EXPECT_EQ(text.find("password"), std::string::npos);
}

// Concurrent increments from several threads are all counted (prometheus-cpp is thread-safe).
TEST(Metrics, ConcurrentIncrements) {
  Metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) m.queries().Increment();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.queries().Value(), 40000);
}

}  // namespace
}  // namespace pgcutover::proxy
