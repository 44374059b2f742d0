// What GET /readyz answers: the proxy is ready when a client it accepts now can be served, that
// is when the active backend accepted a login recently. Accepting connections is not enough: a
// wrong backend password or a backend on a closed port leaves every client with a FATAL while a
// socket-level check says all is well. The answer is cached (a load balancer may probe every
// second; the backend must not see a login each time) and the probe is bounded by
// server_connect_timeout.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace pgcutover::proxy {

class DataPlane;

struct ReadinessAnswer {
  bool ready = false;
  std::string backend;  // the active backend, as the probe found it
  std::string reason;   // why not ("login to backend source refused: 28P01 ..."); empty when ready
  double age_seconds = 0;  // how old the login that answered is
};

class Readiness {
 public:
  explicit Readiness(DataPlane& plane) : plane_(plane) {}

  // Called on an admin thread. Returns the cached answer while it is fresh (a success for
  // kFreshOk, a failure for kFreshFailed), else logs in to the active backend once and waits at
  // most server_connect_timeout (plus a margin) for the outcome.
  ReadinessAnswer check();

  static constexpr std::chrono::seconds kFreshOk{10};
  static constexpr std::chrono::seconds kFreshFailed{2};

 private:
  ReadinessAnswer probe();

  DataPlane& plane_;
  std::mutex mu_;  // one probe at a time; the others wait for its answer
  ReadinessAnswer last_;
  std::chrono::steady_clock::time_point last_at_{};
  bool have_last_ = false;
};

struct Settings;

// `pgcutover-proxy --check --connect`: logs in to every backend once (in parallel, each bounded
// by server_connect_timeout) and says which accepted. Nothing else runs; no state is written.
struct BackendLogin {
  std::string backend;
  bool ok = false;
  std::string error;  // sqlstate and message when refused
  double ms = 0;
};
std::vector<BackendLogin> check_backend_logins(const Settings& settings);

// JSON body of /readyz: {"ready":true,"backend":"source","checked_ms_ago":1200}, or
// {"ready":false,"backend":"source","reason":"..."}.
std::string render_readiness(const ReadinessAnswer& a);

}  // namespace pgcutover::proxy
