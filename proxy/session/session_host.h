// What a client session needs from the shard it runs on, handed to it at creation: the shard's
// context (executor, settings, routes, epoch), its pools and gate, and the process-wide pieces
// a session touches at login, cancel and logout. The shard implements it
// (proxy/runtime/shard.h); a session never reaches past it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "proxy/pool/server_pool.h"
#include "proxy/pool/shard_context.h"
#include "proxy/session/cancel_registry.h"
#include "proxy/session/gate.h"

namespace pgcutover::proxy {

class SessionHost {
 public:
  virtual ShardContext& context() = 0;
  // The pool of one (database, user) client key on this shard, made on first use.
  virtual ServerPool& pool(const std::string& database, const std::string& user) = 0;
  // Where a session waits before starting a transaction while the proxy is paused.
  virtual Gate& gate() = 0;
  // The session's server connection entered (true) or left (false) a transaction: what a pause
  // waits on.
  virtual void busy_changed(bool busy) = 0;
  virtual void session_ended(std::uint64_t id) = 0;

  // ---- process-wide, shared by every shard ----
  virtual CancelRegistry& cancels() = 0;
  // A CancelRequest for a session that may live on another shard.
  virtual void route_cancel(CancelRegistry::Key key) = 0;
  virtual std::atomic<int>& client_count() = 0;
  virtual bool read_only() const = 0;  // read-only mode (the dump-and-restore window)
  // The active backend refused a write as read-only (25006) although the proxy asked for no
  // read-only: a fence. The fleet may have moved without this proxy (docs/fleet.md).
  virtual void fenced_write_seen() = 0;

 protected:
  ~SessionHost() = default;
};

}  // namespace pgcutover::proxy
