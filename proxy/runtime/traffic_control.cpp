#include "proxy/runtime/traffic_control.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "common/log.h"
#include "proxy/cutover/state_file.h"
#include "proxy/net/asio.h"
#include "proxy/pool/server_connection.h"
#include "proxy/pool/server_pids.h"
#include "proxy/runtime/data_plane.h"
#include "proxy/runtime/shard.h"
#include "proxy/session/client_session.h"
#include "proxy/telemetry/held_waits.h"
#include "proxy/telemetry/stats.h"

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
  held_waits().begin();  // a new pause: its held clients' waits start from empty
  on_every_shard(
      plane_, [](Shard& s) { s.gate().close(); }, kShardTimeout);
}

void ShardTrafficControl::open_gate() {
  on_every_shard(
      plane_, [](Shard& s) { s.gate().open(); }, kShardTimeout);
}

ClientWaits ShardTrafficControl::client_waits(Millis settle) {
  return held_waits().summary(settle);
}

int ShardTrafficControl::transactions_in_flight() {
  return static_cast<int>(stats_total(&Stats::servers_in_transaction));
}

int ShardTrafficControl::held_clients() {
  return static_cast<int>(stats_total(&Stats::held_clients));
}

int ShardTrafficControl::pinned_sessions() {
  return static_cast<int>(stats_total(&Stats::pinned_sessions));
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
  // The engine gets here with unmovable sessions only under unmovable_policy = terminate
  // (block refuses the flip first): end them now, with a FATAL that makes the application
  // reconnect, before any of them could run on the new backend without its state.
  on_every_shard(
      plane_,
      [](Shard& shard) {
        shard.for_each_session([](ClientSession& s) {
          std::string reasons = s.unmovable_reasons();
          if (reasons.empty()) return;
          s.terminate({EndReason::kShutdown, "57P01",
                       "terminating connection: the database is moving to a new server "
                       "(pgcutover flip) and this session holds " +
                           reasons + ", which cannot move; reconnect"});
        });
      },
      kShardTimeout);
  if (std::string err = plane_.retarget(backend, epoch); !err.empty()) {
    log::error("retarget_failed", {{"backend", backend}, {"error", err}});
    return false;
  }
  // Wait until every shard has switched, so the gate opens on the new backend everywhere.
  return on_every_shard(
      plane_, [](Shard&) {}, kShardTimeout);
}

bool ShardTrafficControl::prewarm(const std::string& backend, Millis timeout, bool writable) {
  auto settings = plane_.settings();
  auto endpoint = settings->endpoint(backend);
  if (!endpoint) return false;
  auto shards = plane_.shards();
  if (shards.empty()) return false;
  // Each shard opens, beside the other shards, as many connections (TCP, TLS, authentication)
  // as its pools have open now (at least one in all, which proves the backend takes our
  // credentials and certificate before any client is held for it) and keeps them in its warm
  // pool; retarget() hands them to the pools. Bounded by the pools' sizes; closed after
  // prewarm_ttl.
  struct Round {
    std::mutex mu;
    std::promise<void> done;
    int shards_left = 0;
    int opened = 0;
    int failed = 0;
  };
  auto round = std::make_shared<Round>();
  round->shards_left = static_cast<int>(shards.size());
  auto answer = round->done.get_future();
  auto connect_timeout = std::chrono::duration_cast<asio::chrono::milliseconds>(std::min(
      timeout, std::chrono::duration_cast<Millis>(settings->config.proxy.server_connect_timeout)));
  const auto ttl = settings->config.cutover.prewarm_ttl;
  StartupParams extra;
  if (writable) extra.emplace_back("default_transaction_read_only", "off");
  for (Shard* shard : shards) {
    asio::post(shard->io(), [shard, endpoint, settings, connect_timeout, ttl, round, backend,
                             extra] {
      std::size_t want = shard->warm_target();
      if (want == 0 && shard->index() == 0) want = 1;
      struct ShardRound {
        std::vector<std::unique_ptr<ServerConnection>> conns;
        std::size_t to_start = 0;  // connections no opener has begun yet
        std::size_t left = 0;      // connections not finished yet
        int failed = 0;
      };
      auto mine = std::make_shared<ShardRound>();
      mine->to_start = mine->left = want;
      auto shard_done = [shard, round, mine, backend, ttl] {
        std::lock_guard lock(round->mu);
        round->opened += static_cast<int>(mine->conns.size());
        round->failed += mine->failed;
        shard->warm().fill(backend, std::move(mine->conns), Clock::now() + ttl);
        if (--round->shards_left == 0) round->done.set_value();
      };
      if (want == 0) {
        shard_done();
        return;
      }
      // A few connections after one another rather than all at once: each costs the server a
      // backend process (fork, TLS, authentication), and eight at once took both cores from the
      // application's statements for ~20 ms just before the pause. Up to 8 per opener, so that
      // a large pool to a distant server still warms within the timeout.
      const std::size_t openers = (want + 7) / 8;
      for (std::size_t i = 0; i < openers; ++i)
        asio::co_spawn(
            shard->io(),
            [endpoint, settings, connect_timeout, mine, shard_done, extra]() -> awaitable<void> {
              while (mine->to_start > 0) {
                --mine->to_start;
                ConnectResult r = co_await connect_server(endpoint, 0, connect_timeout,
                                                          settings->server_limits, extra);
                if (r.conn) {
                  mine->conns.push_back(std::move(r.conn));
                } else {
                  ++mine->failed;
                  log::warn("prewarm_failed", {{"backend", endpoint->backend.name},
                                               {"sqlstate", r.error.sqlstate},
                                               {"error", r.error.message}});
                }
                // Counted when it ends, so the last opener to finish reports the shard.
                if (--mine->left == 0) shard_done();
              }
            },
            asio::detached);
    });
  }
  if (answer.wait_for(timeout + std::chrono::milliseconds(500)) != std::future_status::ready)
    return false;
  std::lock_guard lock(round->mu);
  log::info("prewarmed", {{"backend", backend},
                          {"connections", std::to_string(round->opened)},
                          {"failed", std::to_string(round->failed)}});
  return round->failed == 0 && round->opened > 0;
}

void ShardTrafficControl::set_read_only(bool enabled) {
  plane_.set_read_only(enabled);
}

std::vector<SessionInfo> ShardTrafficControl::unmovable_sessions() {
  auto out = std::make_shared<std::vector<SessionInfo>>();
  auto mu = std::make_shared<std::mutex>();
  on_every_shard(
      plane_,
      [out, mu](Shard& shard) {
        shard.for_each_session([&](ClientSession& s) {
          std::string reasons = s.unmovable_reasons();
          if (reasons.empty()) return;
          std::lock_guard lock(*mu);
          out->push_back(
              {.client_id = s.id(), .user = s.user(), .database = s.database(), .reason = reasons});
        });
      },
      kShardTimeout);
  std::lock_guard lock(*mu);
  return *out;
}

void ShardTrafficControl::snapshot_sessions() {
  on_every_shard(
      plane_,
      [](Shard& shard) {
        shard.for_each_session([](ClientSession& s) { s.request_cutover_snapshot(); });
      },
      kShardTimeout);
  // Each snapshot is one round trip on an idle connection and counts as in flight meanwhile.
  auto deadline = std::chrono::steady_clock::now() + kShardTimeout;
  while (transactions_in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

std::vector<std::int32_t> ShardTrafficControl::quiet_server_pids() {
  return server_pids().on(plane_.active().backend);
}

bool StateFileStore::persist(const std::string& backend, std::uint64_t epoch) {
  if (std::string err = write_state_file(path_, {backend, epoch}); !err.empty()) {
    log::error("state_file_write_failed", {{"path", path_}, {"error", err}});
    return false;
  }
  return true;
}

}  // namespace pgcutover::proxy
