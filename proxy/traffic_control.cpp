#include "proxy/traffic_control.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>

#include "proxy/asio.h"
#include "proxy/client_session.h"
#include "proxy/data_plane.h"
#include "proxy/log.h"
#include "proxy/server_connection.h"
#include "proxy/shard.h"
#include "proxy/state_file.h"
#include "proxy/stats.h"

namespace pgcutover::proxy {
namespace {

// Runs fn on every shard's thread and waits until all have run it: after close_gate()
// returns, no shard can start a transaction that the engine's in-flight count would miss.
// Bounded: a shard that does not answer in time is reported (its thread is stuck, a bug).
template <class F>
bool on_every_shard(DataPlane& plane, F fn, std::chrono::milliseconds timeout) {
  std::vector<std::future<void>> done;
  for (Shard* shard : plane.shards()) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    asio::post(shard->io(), [shard, p, fn] {
      fn(*shard);
      p->set_value();
    });
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& f : done) {
    if (f.wait_until(deadline) != std::future_status::ready) {
      log::error("bug_shard_unresponsive", {{"timeout_ms", std::to_string(timeout.count())}});
      return false;
    }
  }
  return true;
}

constexpr std::chrono::milliseconds kShardTimeout{2000};

}  // namespace

void ShardTrafficControl::close_gate() {
  on_every_shard(
      plane_, [](Shard& s) { s.gate().close(); }, kShardTimeout);
}

void ShardTrafficControl::open_gate() {
  on_every_shard(
      plane_, [](Shard& s) { s.gate().open(); }, kShardTimeout);
}

int ShardTrafficControl::transactions_in_flight() {
  return static_cast<int>(stats().servers_in_transaction.load(std::memory_order_relaxed));
}

int ShardTrafficControl::held_clients() {
  return static_cast<int>(stats().held_clients.load(std::memory_order_relaxed));
}

int ShardTrafficControl::pinned_sessions() {
  return 0;
}

std::vector<ClientInfo> ShardTrafficControl::blockers() {
  auto out = std::make_shared<std::vector<ClientInfo>>();
  auto mu = std::make_shared<std::mutex>();
  on_every_shard(
      plane_,
      [out, mu](Shard& shard) {
        shard.for_each_session([&](ClientSession& s) {
          if (!s.in_transaction() || s.read_only_route()) return;
          std::lock_guard lock(*mu);
          out->push_back({.client_id = s.id(),
                          .user = s.user(),
                          .database = s.database(),
                          .application_name = {},
                          .address = {},
                          .transaction_age = Millis{0}});
        });
      },
      kShardTimeout);
  std::lock_guard lock(*mu);
  return *out;
}

void ShardTrafficControl::cancel_in_flight() {
  on_every_shard(
      plane_,
      [](Shard& shard) {
        shard.for_each_session([](ClientSession& s) {
          if (s.in_transaction() && !s.read_only_route()) s.forward_cancel();
        });
      },
      kShardTimeout);
}

void ShardTrafficControl::terminate_in_flight() {
  on_every_shard(
      plane_,
      [](Shard& shard) {
        shard.for_each_session([](ClientSession& s) {
          if (s.in_transaction() && !s.read_only_route()) {
            s.terminate({EndReason::kShutdown, "57P01",
                         "terminating connection: its transaction held up a database cutover "
                         "past drain_timeout"});
          }
        });
      },
      kShardTimeout);
}

bool ShardTrafficControl::retarget(const std::string& backend, std::uint64_t epoch) {
  if (std::string err = plane_.retarget(backend, epoch); !err.empty()) {
    log::error("retarget_failed", {{"backend", backend}, {"error", err}});
    return false;
  }
  // Wait until every shard has switched, so the gate opens on the new backend everywhere.
  return on_every_shard(
      plane_, [](Shard&) {}, kShardTimeout);
}

bool ShardTrafficControl::prewarm(const std::string& backend, Millis timeout) {
  auto settings = plane_.settings();
  auto endpoint = settings->endpoint(backend);
  if (!endpoint) return false;
  // One full connection (TCP, TLS, authentication) proves the backend takes ours and leaves
  // its certificate and credentials checked before any client is held for it.
  auto shards = plane_.shards();
  if (shards.empty()) return false;
  auto result = std::make_shared<std::promise<bool>>();
  auto answer = result->get_future();
  asio::co_spawn(
      shards.front()->io(),
      [endpoint, settings, timeout, result]() -> awaitable<void> {
        ConnectResult r = co_await connect_server(
            endpoint, 0, std::chrono::duration_cast<asio::chrono::milliseconds>(timeout),
            settings->server_limits);
        if (!r.conn) {
          log::warn("prewarm_failed", {{"backend", endpoint->backend.name},
                                       {"sqlstate", r.error.sqlstate},
                                       {"error", r.error.message}});
        }
        result->set_value(r.conn != nullptr);
      },
      asio::detached);
  if (answer.wait_for(timeout + std::chrono::milliseconds(500)) != std::future_status::ready)
    return false;
  return answer.get();
}

void ShardTrafficControl::set_read_only(bool enabled) {
  plane_.set_read_only(enabled);
}

std::vector<SessionInfo> ShardTrafficControl::unmovable_sessions() {
  return {};
}

bool StateFileStore::persist(const std::string& backend, std::uint64_t epoch) {
  if (std::string err = write_state_file(path_, {backend, epoch}); !err.empty()) {
    log::error("state_file_write_failed", {{"path", path_}, {"error", err}});
    return false;
  }
  return true;
}

}  // namespace pgcutover::proxy
