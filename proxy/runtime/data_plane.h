// The whole proxy process: the shards, the state shared across them (cancel registry, client
// count, the active backend), and the process-level events: SIGHUP reload, SIGTERM/SIGINT
// graceful shutdown. The cutover engine drives pause/flip through the hooks here.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/cutover/state_file.h"
#include "proxy/runtime/handover.h"
#include "proxy/session/cancel_registry.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

class Shard;

class DataPlane {
 public:
  DataPlane(std::shared_ptr<const Settings> settings, ActiveBackend active);
  ~DataPlane();

  // Opens listeners, starts the shards, waits for SIGTERM/SIGINT (handles SIGHUP meanwhile),
  // shuts down gracefully. Returns the process exit code.
  int run();

  CancelRegistry& cancels() { return cancels_; }
  std::atomic<int>& client_count() { return clients_; }
  // A CancelRequest arrived on some shard: route it to the shard owning the session.
  void route_cancel(CancelRegistry::Key key);

  // ---- hooks for the cutover engine and the admin API ----
  std::vector<Shard*> shards();
  // The shard a new client goes to: fewest live clients, ties broken by `rotation`.
  Shard& least_loaded_shard(std::size_t rotation);
  ActiveBackend active() const;
  // Every route as served now (proxy/pool/route_table.h), for /v1/status.
  std::shared_ptr<const class RouteTable> routes() const;
  // Switches every shard to `backend` under `epoch` (the cutover engine has persisted both
  // first). Returns "" on success or the error (a route without a backend on that side).
  std::string retarget(const std::string& backend, std::uint64_t epoch);
  std::shared_ptr<const Settings> settings() const;
  // Reloads the config file: on success every shard gets the new settings (existing sessions
  // keep theirs); on failure the old config stays and the error is logged. Returns the error.
  std::string reload();
  // Graceful shutdown, as on SIGTERM. handed_over: a successor took the listening sockets, so
  // first wait (up to shutdown_timeout) for the clients to leave by themselves.
  void request_shutdown(bool handed_over = false);
  // Called on the main thread when a graceful shutdown begins (before sessions are told).
  void on_shutdown_begin(std::function<void()> fn) { on_shutdown_begin_ = std::move(fn); }
  // Called by run() once the port is this process's (bound or handed over), before serving.
  void on_listening(std::function<void()> fn) { on_listening_ = std::move(fn); }
  // Runs on the main thread once the shards run and the sockets listen, before the first
  // client is accepted (connections wait in the listen queue meanwhile): the fleet agent's
  // first sync, so a pause in progress closes the gate before any client's query.
  void before_accepting(std::function<void()> fn) { before_accepting_ = std::move(fn); }

  // ---- planned hand-over (proxy/runtime/handover.h) ----
  // Before run(): listen on the sockets a predecessor handed over instead of binding.
  void inherit(const HandoverSockets& sockets) { inherited_ = sockets; }
  // The client listening sockets (all -1 before run() has them or once shutdown began).
  HandoverSockets listening_sockets() const;
  // SHA-256 of the configuration file as last loaded (start or reload).
  std::string config_digest() const;
  // Read-only mode (the dump method's window): server connections are switched to
  // default_transaction_read_only when a client next gets one, so writes fail with 25006.
  bool read_only() const { return read_only_.load(std::memory_order_relaxed); }
  void set_read_only(bool on) { read_only_.store(on, std::memory_order_relaxed); }
  // A session saw the active backend refuse a write as read-only (a fence). Calls the handler
  // at most once a second (any thread; set the handler before run()).
  void fenced_write_seen();
  void on_fenced_write(std::function<void()> fn) { on_fenced_write_ = std::move(fn); }

 private:
  mutable std::mutex mutex_;  // guards settings_ and active_
  std::shared_ptr<const Settings> settings_;
  ActiveBackend active_;
  std::shared_ptr<const class RouteTable> routes_;  // what every shard serves (after posting)
  CancelRegistry cancels_;
  std::atomic<int> clients_{0};
  std::atomic<bool> read_only_{false};
  std::vector<std::unique_ptr<Shard>> shards_;
  std::function<void(bool)> shutdown_;
  std::function<void()> on_shutdown_begin_;
  std::function<void()> on_listening_;
  std::function<void()> before_accepting_;
  std::function<void()> on_fenced_write_;
  std::atomic<std::int64_t> fenced_write_reported_ms_{0};
  HandoverSockets inherited_;
  HandoverSockets listening_;  // guarded by mutex_
  std::string config_digest_;  // guarded by mutex_
};

}  // namespace pgcutover::proxy
