// proxy/pool/server_pids.*: what a pause reports for the controller's fence to spare. Exactly
// the live connections to the named backend: one that closed is gone at once (a pid the
// fence spares by mistake would let a foreign writer through), one to another backend (a
// replica on its own server, whose pid numbers mean nothing on the source) is never listed.
#include <gtest/gtest.h>

#include <optional>

#include "proxy/pool/server_pids.h"

namespace pgcutover::proxy {
namespace {

using Pids = std::vector<std::int32_t>;

TEST(ProxyServerPids, ListsTheLiveConnectionsOfOneBackend) {
  ServerPids r;
  auto a = r.add("source", 300);
  auto b = r.add("source", 100);
  auto c = r.add("source_follower", 200);
  EXPECT_EQ(r.on("source"), (Pids{100, 300}));
  EXPECT_EQ(r.on("source_follower"), (Pids{200}));
  EXPECT_EQ(r.on("target"), Pids{});
}

TEST(ProxyServerPids, AClosedConnectionIsGoneAtOnce) {
  ServerPids r;
  auto a = r.add("source", 1);
  {
    auto b = r.add("source", 2);
    EXPECT_EQ(r.on("source"), (Pids{1, 2}));
  }
  EXPECT_EQ(r.on("source"), (Pids{1}));
}

TEST(ProxyServerPids, AMovedEntryIsListedOnceAndRemovedOnce) {
  ServerPids r;
  std::optional<ServerPids::Entry> holder;
  {
    auto e = r.add("source", 7);
    holder.emplace(std::move(e));
  }  // the moved-from entry removes nothing
  EXPECT_EQ(r.on("source"), (Pids{7}));
  ServerPids::Entry other = r.add("source", 8);
  other = std::move(*holder);  // 8 is closed by the assignment, 7 now held by `other`
  EXPECT_EQ(r.on("source"), (Pids{7}));
  holder.reset();
  EXPECT_EQ(r.on("source"), (Pids{7}));
}

TEST(ProxyServerPids, ALoginThatNeverCompletedIsNotListed) {
  ServerPids r;
  ServerPids::Entry none;          // a connection before its ReadyForQuery holds an empty entry
  auto zero = r.add("source", 0);  // no BackendKeyData: no pid to spare
  EXPECT_EQ(r.on("source"), Pids{});
}

}  // namespace
}  // namespace pgcutover::proxy
