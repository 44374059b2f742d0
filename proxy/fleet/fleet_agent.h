// The proxy's side of the fleet channel (common/fleet_contract.h, docs/fleet.md): for each
// channel database, one control session that registers this proxy, holds its liveness lock,
// LISTENs for commands and answers each one with what the admin API would have answered.
// A command read from both databases runs once; its answer is written to each. A lost session
// is opened again every reconnect_interval; meanwhile the controller sees the member missing.
//
// Its own thread and io_context, like the admin API: nothing here can slow a shard, and a pause
// that blocks for its drain runs on a worker thread, never on the channel's reader.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/admin/admin_server.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {

// What the member row says about this proxy (refreshed after every command).
struct MemberState {
  std::string state;    // running | paused | ...
  std::string backend;  // active backend
  std::uint64_t epoch = 0;
};

struct FleetAgentOptions {
  std::string name;
  std::string host;
  std::string version;
  std::string admin;  // "addr:port" of this proxy's admin API, "" when it has none
  // channel backend name -> endpoint
  std::vector<std::pair<std::string, std::shared_ptr<const BackendEndpoint>>> channel;
  protocol::Limits limits;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_interval{2000};
};

class FleetAgent {
 public:
  using Execute = std::function<HttpReply(const HttpRequest&)>;
  using LocalState = std::function<MemberState()>;

  FleetAgent(FleetAgentOptions options, Execute execute, LocalState local_state);
  ~FleetAgent();
  FleetAgent(const FleetAgent&) = delete;
  FleetAgent& operator=(const FleetAgent&) = delete;

  void start();
  // Blocks until the agent has joined a channel database, followed its authority and run the
  // commands waiting there (a pause in progress, say), or `timeout`: called before the proxy
  // accepts its first client, so a proxy that starts in the middle of a flip is told the phase
  // before it takes traffic. false on timeout (no database answered in time).
  bool wait_first_sync(std::chrono::milliseconds timeout);
  // Reads the authority again and follows it when it is newer (any thread): the backend
  // refused a write as fenced, or the dead-man timer resumed the proxy, so the fleet may have
  // moved while this proxy was away. Reconnects at once when no control session is open.
  void recheck_authority(std::string reason);
  // The proxy's state, backend or epoch changed (any thread): the member rows follow.
  void member_changed();
  // Ends the control sessions (the member leaves the fleet) and joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The member name when [fleet] name is empty: "$DYNO.<host>" when DYNO is set (Heroku), else
// "<host>.<pid>", cut to a valid name.
std::string default_member_name();

}  // namespace pgcutover::proxy
