// Every proxy at once: the same admin call sent to all of them in parallel (one thread each,
// so the slowest proxy bounds the step, not the sum), with each answer parsed into what the
// flip needs. The proxies are those of [[control.proxies]] (admin API) and the live members of
// the fleet (the same call through the databases, control/command/fleet_channel.h), labelled
// "fleet:<name>". The rule the callers keep: a partial failure is never left
// as two proxies RUNNING on different backends (flip.cpp rolls the others back or forward).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/command/fleet_channel.h"
#include "control/command/settings.h"

namespace pgcutover::control {

struct ProxyAnswer {
  std::string admin_url;
  bool reachable = false;
  int http_status = 0;
  bool ok = false;      // 200 and (for commands) "ok": true
  std::string result;   // the command's "result" ("ok", "stale_epoch", ...) or "unreachable"
  std::string error;    // in words
  std::string state;    // "running", "paused", ...
  std::string backend;  // active backend after the call
  uint64_t epoch = 0;
  bool changed = false;
  boost::json::object body;
  // When this command reopened the proxy's gate: what the clients it held waited (ms), each
  // from its message reaching the gate to its first answer byte. Absent: no gate reopened.
  std::optional<double> client_wait_worst_ms, client_wait_p99_ms;
  int clients_held = 0;
  std::chrono::steady_clock::time_point answered_at;
};

class ProxyFleet {
 public:
  ProxyFleet(std::vector<ProxyAdminEndpoint> proxies, std::chrono::milliseconds timeout)
      : proxies_(std::move(proxies)), timeout_(timeout) {}
  size_t size() const { return proxies_.size() + members_.size(); }
  const std::vector<ProxyAdminEndpoint>& endpoints() const { return proxies_; }

  // Adds the live members of the fleet, except those the admin list already reaches (a
  // member registers its admin address). Returns how many were added.
  size_t add_fleet(std::shared_ptr<FleetChannel> channel);
  // Opens the fleet channel of `settings` (when a database has the schema) and adds its live
  // members. Why a database did not open goes to `problems` ("" when none).
  size_t join_fleet(const ControlSettings& settings, std::chrono::seconds connect_timeout,
                    std::string& problems);
  const std::vector<std::string>& members() const { return members_; }
  // Records the authority in the fleet's databases (no-op without a channel): "" or problems.
  std::string record_authority(const std::string& backend, uint64_t epoch);
  // The fleet's databases (no-op without a channel): this run begun or ended, and the last run
  // and the authority they hold (recover on another machine).
  std::string record_run_begin(const std::string& run, const std::string& direction,
                               const std::string& begin_data);
  std::string record_run_end(const std::string& run, const std::string& outcome);
  std::optional<CutoverRunRecord> last_run();
  std::vector<FleetAuthority> authority();
  bool has_channel() const { return channel_ != nullptr; }

  std::vector<ProxyAnswer> status();
  // `writable`: the connections log in writable even while the backend's roles are fenced (the
  // flip lifts that fence before any gate opens there).
  std::vector<ProxyAnswer> prewarm(const std::string& backend, int timeout_ms,
                                   bool writable = false);
  std::vector<ProxyAnswer> pause(int drain_timeout_ms, int max_pause_ms);
  std::vector<ProxyAnswer> resume();
  // POST /v1/replication_lag with one reading (a JSON body) to every proxy.
  std::vector<ProxyAnswer> publish_lag(const std::string& reading);
  // Flips each proxy with the epoch given for it (epochs[i] for proxy i).
  std::vector<ProxyAnswer> flip(const std::string& backend, const std::vector<uint64_t>& epochs);
  // The same POST to a subset (indexes), for retries and rollbacks.
  std::vector<ProxyAnswer> call(const std::vector<size_t>& which, const std::string& method,
                                const std::string& path, const std::vector<std::string>& bodies,
                                std::chrono::milliseconds timeout);

 private:
  std::vector<ProxyAdminEndpoint> proxies_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<FleetChannel> channel_;
  std::mutex channel_mutex_;                // one libpq session per database: one command at a time
  std::vector<std::string> members_;        // index size() - members_.size() + k
  std::vector<std::string> admin_members_;  // fleet members reached by their admin API
};

// Parses one admin answer (exposed for the unit test).
ProxyAnswer parse_proxy_answer(const std::string& admin_url, bool reachable, int status,
                               const std::string& body, const std::string& error);

// True when every answer is ok.
bool all_ok(const std::vector<ProxyAnswer>& answers);
// "" when every answer is ok, running, on `backend`, all at one epoch (set to it); else the
// first proxy that is not, in words.
std::string all_running_on(const std::vector<ProxyAnswer>& answers, const std::string& backend,
                           uint64_t& epoch);
// "http://a: unreachable (connect: Connection refused); http://b: drain_timeout (...)"
std::string describe_failures(const std::vector<ProxyAnswer>& answers);
boost::json::array to_json(const std::vector<ProxyAnswer>& answers);

}  // namespace pgcutover::control
