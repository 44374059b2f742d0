// The data plane's counters: each shard thread counts into a set of its own (no cache line
// written by two cores), every other thread into the shared set, and the readers see the sum.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {
namespace {

TEST(Stats, ShardThreadsCountApartAndReadersSeeTheSum) {
  auto before = std::make_unique<Stats>();
  add_up_stats(*before);
  const std::int64_t held_before = stats_total(&Stats::held_clients);

  Stats* shared = &stats();
  Stats* first = nullptr;
  Stats* second = nullptr;
  auto shard = [](Stats** mine, int queries) {
    use_own_stats();
    *mine = &stats();
    for (int i = 0; i < queries; ++i) stats().queries_total.fetch_add(1);
    stats().held_clients.fetch_add(2);
    stats().count_error("40001");
  };
  std::thread a(shard, &first, 1000);
  std::thread b(shard, &second, 500);
  a.join();
  b.join();
  stats().queries_total.fetch_add(7);  // this thread: the shared set
  stats().held_clients.fetch_sub(1);

  EXPECT_NE(first, shared);
  EXPECT_NE(second, shared);
  EXPECT_NE(first, second);
  EXPECT_EQ(first->queries_total.load(), 1000u);
  EXPECT_EQ(second->queries_total.load(), 500u);

  auto after = std::make_unique<Stats>();
  add_up_stats(*after);
  EXPECT_EQ(after->queries_total.load() - before->queries_total.load(), 1507u);
  EXPECT_EQ(after->held_clients.load() - before->held_clients.load(), 3);
  constexpr std::size_t k40 = 4 * 36 + 0;  // class "40"
  EXPECT_EQ(after->errors_by_class[k40].load() - before->errors_by_class[k40].load(), 2u);
  EXPECT_EQ(stats_total(&Stats::held_clients) - held_before, 3);
}

}  // namespace
}  // namespace pgcutover::proxy
