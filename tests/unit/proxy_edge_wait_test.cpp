// edge_wait: a wait that skips epoll's re-arm must still see every byte. Real loopback sockets
// in a real io_context; every run is bounded.
#include "proxy/net/edge_wait.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace pgcutover::proxy {
namespace {

using namespace std::chrono_literals;

struct Pair {
  asio::io_context io{1};
  tcp::socket near{io};  // the proxy's side: waited on
  tcp::socket far{io};   // the peer: writes

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    far.connect(acceptor.local_endpoint());
    acceptor.accept(near);
    near.non_blocking(true);
  }
  std::optional<error_code> done;  // the wait's outcome, once it completed

  // A read of ours, as the relay's: how many bytes, or -1 when the socket was empty.
  ssize_t read_all() {
    char sink[256];
    ssize_t total = 0;
    for (;;) {
      ssize_t n = ::recv(near.native_handle(), sink, sizeof sink, MSG_DONTWAIT);
      if (n <= 0) return total > 0 ? total : -1;
      total += n;
    }
  }
  // Reads the socket empty and says so, as the relay does before it parks.
  void drain() {
    EXPECT_EQ(read_all(), -1);
    EXPECT_TRUE(edge_wait::note_read(near, /*would_block=*/true, 256, 0));
  }
  void wait(bool drained) {
    edge_wait::async_wait_readable(near, drained, [this](error_code ec) { done = ec; });
  }
  void send(const char* bytes) { asio::write(far, asio::buffer(bytes, std::strlen(bytes))); }
  // Until the near socket has bytes in the kernel (loopback delivery is quick, not instant).
  bool readable_within(int ms) {
    pollfd p{near.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  }
  void run_for(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }
  // Runs the loop until the wait completed or 5 s passed.
  bool run_until_done() {
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < until) run_for(50ms);
    return done.has_value();
  }
};

TEST(EdgeWait, IsTheOneThisPlatformBuilds) {
  // Debian 12: Boost 1.81, epoll. Elsewhere the fallback (Asio's async_wait) is built, and
  // this test says so rather than letting the saving vanish unnoticed.
  EXPECT_EQ(PGCUTOVER_EDGE_WAIT, 1);
}

TEST(EdgeWait, AWaitAfterADrainSleepsUntilBytesCome) {
  Pair p;
  p.drain();
  p.wait(true);
  p.run_for(100ms);
  EXPECT_FALSE(p.done) << "completed with nothing to read";
  p.send("Q");
  ASSERT_TRUE(p.run_until_done());
  EXPECT_FALSE(*p.done);
  EXPECT_EQ(p.read_all(), 1);
}

// The case the re-arm exists for: bytes arrive after the drain, and the reactor takes their
// edge (epoll_wait) while nothing waits on the socket. A wait started afterwards must complete.
TEST(EdgeWait, BytesWhoseEdgeTheReactorTookBeforeTheWaitAreSeen) {
  Pair p;
  p.drain();
  p.send("QQ");
  ASSERT_TRUE(p.readable_within(5000));
  // The loop runs epoll_wait while a timer is pending: the near socket's edge comes and goes
  // with no operation waiting for it.
  asio::steady_timer timer(p.io, 50ms);
  bool fired = false;
  timer.async_wait([&](error_code) { fired = true; });
  p.run_for(2s);
  ASSERT_TRUE(fired);
  p.wait(true);
  ASSERT_TRUE(p.run_until_done()) << "an edge taken before the wait was lost";
  EXPECT_FALSE(*p.done);
  EXPECT_EQ(p.read_all(), 2);
}

TEST(EdgeWait, BytesLeftByAShortReadAreSeen) {
  // A read that did not empty the socket: the caller passes drained = false, Asio's own wait.
  Pair p;
  p.send("QQQ");
  ASSERT_TRUE(p.readable_within(5000));
  char one;
  ASSERT_EQ(::recv(p.near.native_handle(), &one, 1, MSG_DONTWAIT), 1);
  p.wait(false);
  ASSERT_TRUE(p.run_until_done());
  EXPECT_EQ(p.read_all(), 2);
}

TEST(EdgeWait, ClosingTheSocketEndsTheWait) {
  Pair p;
  p.drain();
  p.wait(true);
  p.run_for(50ms);
  ASSERT_FALSE(p.done);
  p.near.close();
  ASSERT_TRUE(p.run_until_done());
  EXPECT_EQ(*p.done, asio::error::operation_aborted);
}

}  // namespace
}  // namespace pgcutover::proxy
