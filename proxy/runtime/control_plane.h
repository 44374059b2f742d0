// Everything that steers the data plane from outside: the cutover engine, the admin API that
// drives it, and the Prometheus metrics it serves. Built from the configuration next to the
// DataPlane; the admin API and the fleet channel run on their own threads, so a long drain
// never blocks a shard.
#pragma once

#include <memory>
#include <string>

#include "proxy/admin/admin_server.h"
#include "proxy/cutover/cutover_engine.h"
#include "proxy/fleet/fleet_agent.h"
#include "proxy/runtime/handover.h"
#include "proxy/runtime/observer_tee.h"
#include "proxy/runtime/readiness.h"
#include "proxy/runtime/traffic_control.h"
#include "proxy/telemetry/cutover_metrics.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/telemetry/stats_export.h"

namespace pgcutover::proxy {

class DataPlane;
struct Settings;

class ControlPlane {
 public:
  ControlPlane(DataPlane& plane, const Settings& settings);
  ~ControlPlane();

  // Starts the admin API when [admin] token is set (an API without a token would refuse
  // every call, so it is not started and a warning says why). false: could not listen.
  bool start(std::string& error);
  // Reopens a closed gate (shutdown must never wait on a pause) and stops the admin API.
  void stop();
  // With [fleet]: starts the agent and waits (bounded) until it is in step with the fleet.
  // Called by the data plane once its shards run, before it accepts its first client
  // (DataPlane::before_accepting).
  void sync_fleet();
  bool admin_running() const { return admin_listening_; }

  // ---- planned hand-over (proxy/runtime/handover.h) ----
  // The successor, before start(): serve the admin API on the predecessor's socket and hold
  // every cutover command until the predecessor has exited (takes grant.link).
  void inherit(HandoverGrant& grant);
  // Once this process owns the port: answer hand-over requests from a successor.
  void offer_handover();

 private:
  DataPlane& plane_;
  Metrics metrics_;
  StatsExporter exporter_;
  CutoverMetrics cutover_metrics_;          // the engine reports here
  ObserverTee observer_{cutover_metrics_};  // ... and, through it, the fleet agent
  ShardTrafficControl traffic_;
  StateFileStore store_;
  CutoverEngine engine_;
  Readiness readiness_{plane_};  // GET /readyz
  AdminServerOptions admin_options_;
  std::unique_ptr<AdminServer> admin_;  // the routes; listening only with a token
  bool admin_listening_ = false;
  std::unique_ptr<FleetAgent> agent_;  // [fleet]: commands through the databases
  std::unique_ptr<HandoverOffer> offer_;
  std::unique_ptr<PredecessorWatch> predecessor_;
};

}  // namespace pgcutover::proxy
