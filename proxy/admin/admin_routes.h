// The admin API's endpoints (docs/admin-api.md), wiring AdminServer to the CutoverEngine; the
// Prometheus text comes from whoever owns the metrics (AdminRouteOptions::metrics_text). Request
// bodies are flat JSON objects; unknown keys are refused (400) so a typo never silently becomes a
// default.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "proxy/admin/admin_server.h"
#include "proxy/cutover/cutover_engine.h"

namespace pgcutover::proxy {

// One replication lag reading, measured by the controller (`pgcutoverctl lag --watch
// --publish`) and posted to POST /v1/replication_lag so the proxy's metrics carry it.
struct LagReading {
  std::string method;     // logical | external | trigger | ...
  std::string direction;  // forward | reverse | "" (methods without one)
  bool ok = false;        // the reading measured something
  std::optional<double> bytes, seconds;
  double measured_at_unix = 0;
};

struct AdminRouteOptions {
  // GET /metrics without a token (for a Prometheus that cannot send one). Default: token.
  bool metrics_public = false;
  // GET /readyz: true when a client accepted now can be served; `body` is the JSON answer
  // (with the reason when not ready). Unset: ready once the admin server runs.
  std::function<bool(std::string& body)> ready;
  // GET /metrics: the Prometheus text exposition. Unset: /metrics answers 404.
  std::function<std::string()> metrics_text;
  // POST /v1/replication_lag (token): takes a reading into the metrics. Unset: 404.
  std::function<void(const LagReading&)> publish_lag;
  // GET /v1/status also lists the routes (a JSON array, proxy/pool/route_table.h) when set.
  std::function<std::string()> routes_json;
  // GET /v1/status says this proxy's fleet member name when set, so a controller that reaches
  // it by its admin API too does not command it twice.
  std::string fleet_member;
};

void register_admin_routes(AdminServer& server, CutoverEngine& engine,
                           AdminRouteOptions options = {});

// JSON renderings (exposed for tests and for pgcutoverctl's expectations).
std::string render_result(const CommandResult& r);
std::string render_status(const CutoverStatus& s);

}  // namespace pgcutover::proxy
