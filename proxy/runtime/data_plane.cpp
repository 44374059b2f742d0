#include "proxy/runtime/data_plane.h"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "common/log.h"
#include "proxy/net/asio.h"
#include "proxy/pool/route_table.h"
#include "proxy/runtime/shard.h"
#include "proxy/session/client_session.h"

namespace pgcutover::proxy {

DataPlane::DataPlane(std::shared_ptr<const Settings> settings, ActiveBackend active)
    : settings_(std::move(settings)), active_(std::move(active)) {
  int n = settings_->config.proxy.threads;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string error;
  auto routes = RouteTable::build(*settings_, active_.backend, error);
  if (!routes) throw ConfigError(settings_->config.path + ": " + error);
  for (int i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>(*this, i, n, settings_, routes, active_.epoch));
  }
  routes_ = routes;
  config_digest_ = proxy::config_digest(settings_->config.path);
}

DataPlane::~DataPlane() {
  for (auto& s : shards_) s->join();
}

Shard& DataPlane::least_loaded_shard(std::size_t rotation) {
  std::size_t n = shards_.size(), best = rotation % n;
  for (std::size_t k = 1; k < n; ++k) {
    std::size_t i = (rotation + k) % n;
    if (shards_[i]->live_clients() < shards_[best]->live_clients()) best = i;
  }
  return *shards_[best];
}

std::vector<Shard*> DataPlane::shards() {
  std::vector<Shard*> out;
  for (auto& s : shards_) out.push_back(s.get());
  return out;
}

ActiveBackend DataPlane::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

std::shared_ptr<const RouteTable> DataPlane::routes() const {
  std::lock_guard lock(mutex_);
  return routes_;
}

std::shared_ptr<const Settings> DataPlane::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

void DataPlane::route_cancel(CancelRegistry::Key key) {
  auto target = cancels_.find(key);
  if (!target) {
    // Unknown key: drop silently, as PostgreSQL does (no oracle for guessing keys).
    log::debug("cancel_unknown_key");
    return;
  }
  if (target->shard < 0 || static_cast<std::size_t>(target->shard) >= shards_.size()) {
    log::error("bug_cancel_bad_shard", {{"shard", std::to_string(target->shard)}});
    return;
  }
  Shard* shard = shards_[static_cast<std::size_t>(target->shard)].get();
  std::uint64_t id = target->session_id;
  asio::post(shard->io(), [shard, id] {
    if (auto session = shard->find_session(id)) session->forward_cancel();
  });
}

HandoverSockets DataPlane::listening_sockets() const {
  std::lock_guard lock(mutex_);
  return listening_;
}

std::string DataPlane::config_digest() const {
  std::lock_guard lock(mutex_);
  return config_digest_;
}

std::string DataPlane::retarget(const std::string& backend, std::uint64_t epoch) {
  std::shared_ptr<const RouteTable> routes;
  {
    std::lock_guard lock(mutex_);
    // Every route must have a backend on the new side before anything changes: one flip, one
    // epoch, every route (a follower left on the old side is the classic forgotten consumer).
    std::string error;
    routes = RouteTable::build(*settings_, backend, error);
    if (!routes) return error;
    // The state file already names `backend`: the cutover engine persists through its
    // StateStore before it retargets (one writer of the file, proxy/cutover/state_file.h).
    active_ = {backend, epoch};
    routes_ = routes;
  }
  for (auto& s : shards_) {
    Shard* shard = s.get();
    asio::post(shard->io(), [shard, routes, epoch] { shard->retarget(routes, epoch); });
  }
  log::info("retarget", {{"backend", backend}, {"epoch", std::to_string(epoch)}});
  return {};
}

std::string DataPlane::reload() {
  std::shared_ptr<const Settings> fresh;
  std::string path;
  {
    std::lock_guard lock(mutex_);
    path = settings_->config.path;
  }
  try {
    fresh = Settings::build(Config::load(path));
  } catch (const ConfigError& e) {
    log::error("reload_failed",
               {{"error", e.what()}, {"action", "keeping the previous configuration"}});
    return e.what();
  }
  std::shared_ptr<const RouteTable> routes;
  ActiveBackend active;
  {
    std::lock_guard lock(mutex_);
    const auto& old = settings_->config.proxy;
    const auto& now = fresh->config.proxy;
    if (old.listen_addr != now.listen_addr || old.listen_port != now.listen_port ||
        old.threads != now.threads || old.unix_socket_dir != now.unix_socket_dir) {
      log::warn("reload_needs_restart",
                {{"keys", "proxy.listen_addr/listen_port/threads/unix_socket_dir"}});
    }
    const auto& f0 = settings_->config.fleet;
    const auto& f1 = fresh->config.fleet;
    if (f0.enabled != f1.enabled || f0.name != f1.name || f0.channel != f1.channel ||
        f0.reconnect_interval != f1.reconnect_interval)
      log::warn("reload_needs_restart", {{"keys", "fleet.*"}});
    active = active_;
    std::string route_error;
    routes = RouteTable::build(*fresh, active.backend, route_error);
    if (!routes) {
      std::string err = path + ": the active side \"" + active.backend +
                        "\" cannot be served by the new file: " + route_error;
      log::error("reload_failed",
                 {{"error", err}, {"action", "keeping the previous configuration"}});
      return err;
    }
    settings_ = fresh;
    routes_ = routes;
    config_digest_ = proxy::config_digest(path);
  }
  log::Level level;
  if (log::parse_level(fresh->config.proxy.log_level, level)) log::set_level(level);
  for (auto& s : shards_) {
    Shard* shard = s.get();
    // Same epoch: the backend's URL or TLS settings may have changed, so new connections use
    // the new endpoint; existing ones stay until reaped.
    asio::post(shard->io(), [shard, fresh, routes, epoch = active.epoch] {
      shard->set_settings(fresh);
      shard->retarget(routes, epoch);
    });
  }
  log::info("reloaded", {{"config", path}});
  return {};
}

void DataPlane::fenced_write_seen() {
  if (!on_fenced_write_) return;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = fenced_write_reported_ms_.load(std::memory_order_relaxed);
  if (now - last < 1000) return;
  if (!fenced_write_reported_ms_.compare_exchange_strong(last, now)) return;
  on_fenced_write_();
}

void DataPlane::request_shutdown(bool handed_over) {
  if (shutdown_) shutdown_(handed_over);
}

int DataPlane::run() {
  auto settings = this->settings();
  // One listener, on shard 0, which spreads connections over every shard.
  shards_.front()->listen(settings->config.proxy, inherited_);
  {
    std::lock_guard lock(mutex_);
    listening_ = shards_.front()->listening_sockets();
  }
  for (auto& s : shards_) s->start();
  if (before_accepting_) before_accepting_();
  for (auto& s : shards_) s->start_accepting();
  log::info("listening", {{"addr", settings->config.proxy.listen_addr},
                          {"port", std::to_string(settings->config.proxy.listen_port)},
                          {"shards", std::to_string(shards_.size())},
                          {"pool_mode", std::string(to_string(settings->config.proxy.pool_mode))},
                          {"backend", active().backend},
                          {"epoch", std::to_string(active().epoch)}});

  // Signals are handled on the main thread; shards are reached by posting to them.
  asio::io_context main_io;
  asio::signal_set signals(main_io, SIGHUP, SIGTERM, SIGINT);
  bool stopping = false;
  asio::steady_timer deadline(main_io);
  asio::steady_timer poll(main_io);
  std::function<void()> wait_sessions;

  // Runs `step` on every shard's thread (posted: shutdown never waits on a shard here).
  auto on_shards = [this](void (Shard::*step)()) {
    for (auto& s : shards_) {
      Shard* shard = s.get();
      asio::post(shard->io(), [shard, step] { (shard->*step)(); });
    }
  };
  // Sessions end at their next transaction boundary; what is left after shutdown_timeout is
  // terminated.
  bool waiting_for_clients = false;
  auto end_sessions = [&] {
    waiting_for_clients = false;
    on_shards(&Shard::begin_shutdown);
    deadline.expires_after(this->settings()->config.proxy.shutdown_timeout);
    deadline.async_wait([&](error_code ec) {
      if (ec) return;
      log::warn("shutdown_timeout",
                {{"clients", std::to_string(clients_.load())}, {"action", "terminating"}});
      on_shards(&Shard::terminate_all);
    });
  };
  auto begin_shutdown = [&](bool handed_over) {
    if (stopping) {
      // A signal while waiting for a hand-over's clients: stop waiting.
      if (waiting_for_clients && !handed_over) end_sessions();
      return;
    }
    stopping = true;
    {
      std::lock_guard lock(mutex_);
      listening_ = {};  // the shards release them next: nothing left to hand over
    }
    // A paused gate must not hold sessions past shutdown: the cutover engine reopens it.
    if (on_shutdown_begin_) on_shutdown_begin_();
    log::info("shutdown_started",
              {{"reason", handed_over ? "handover" : "signal"},
               {"timeout_s",
                std::to_string(this->settings()->config.proxy.shutdown_timeout.count() / 1000.0)}});
    if (!handed_over) {
      end_sessions();
    } else {
      // The successor accepts from now on. This process's clients leave by themselves first
      // (a per-request client disconnects, a pool closes what it no longer needs): ending an
      // idle session at once would fail a client that had just logged in here. After
      // shutdown_timeout the rest end at their next transaction boundary, as on SIGTERM.
      waiting_for_clients = true;
      on_shards(&Shard::stop_accepting);
      deadline.expires_after(this->settings()->config.proxy.shutdown_timeout);
      deadline.async_wait([&](error_code ec) {
        if (ec || !waiting_for_clients) return;
        log::info("handover_ending_sessions", {{"clients", std::to_string(clients_.load())}});
        end_sessions();
      });
    }
    wait_sessions();
  };
  // Polls the client count: simple, and shutdown is not a hot path.
  wait_sessions = [&] {
    if (clients_.load() == 0) {
      deadline.cancel();
      signals.cancel();
      return;
    }
    poll.expires_after(asio::chrono::milliseconds(20));
    poll.async_wait([&](error_code ec) {
      if (!ec) wait_sessions();
    });
  };
  std::function<void()> on_signal = [&] {
    signals.async_wait([&](error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        reload();
      } else {
        begin_shutdown(false);
      }
      if (!(stopping && clients_.load() == 0)) on_signal();
    });
  };
  on_signal();
  shutdown_ = [&](bool handed_over) {
    asio::post(main_io, [&begin_shutdown, handed_over] { begin_shutdown(handed_over); });
  };
  if (on_listening_) on_listening_();  // after shutdown_: a hand-over may request it at once
  main_io.run();
  shutdown_ = nullptr;
  for (auto& s : shards_) s->join();
  log::info("shutdown_complete");
  return 0;
}

}  // namespace pgcutover::proxy
