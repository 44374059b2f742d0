#include "proxy/runtime/control_plane.h"

#include <unistd.h>

#include "common/log.h"
#include "proxy/admin/admin_routes.h"
#include "proxy/pool/route_table.h"
#include "proxy/runtime/data_plane.h"
#include "proxy/settings/settings.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {
namespace {

// The sides a flip may name: every backend, or with [routes.*] only those every route has a
// backend for (a follower or a replica is never a side of its own). Revert relies on this
// being the pair when it does not know the previous side.
std::vector<std::string> backend_names(const Settings& s) {
  std::vector<std::string> names;
  for (const auto& [name, b] : s.config.backends) {
    bool side = true;
    for (const auto& [route_name, route] : s.config.routes) side &= route.backends.count(name) > 0;
    if (side) names.push_back(name);
  }
  return names;
}

CutoverOptions cutover_options(const Settings& s, const ActiveBackend& active) {
  const CutoverSettings& c = s.config.cutover;
  CutoverOptions o;
  o.backends = backend_names(s);
  o.active_backend = active.backend;
  o.epoch = active.epoch;
  o.drain_timeout = std::chrono::duration_cast<Millis>(c.drain_timeout);
  o.drain_policy = c.drain_policy;
  o.max_pause = std::chrono::duration_cast<Millis>(c.max_pause);
  o.prewarm_on_flip = c.prewarm;
  o.unmovable_policy = c.unmovable_policy;
  o.prewarm_timeout = std::chrono::duration_cast<Millis>(s.config.proxy.server_connect_timeout);
  // The drain ends when the shared in-flight counter reaches zero; polling it every 2 ms
  // during a pause costs nothing and keeps the write pause short.
  o.drain_poll_interval = Millis{2};
  return o;
}

FleetAgentOptions fleet_agent_options(const Settings& s, std::string name,
                                      std::string admin_address) {
  FleetAgentOptions o;
  o.name = std::move(name);
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) o.host = host;
  o.version = PGCUTOVER_VERSION;
  o.admin = std::move(admin_address);
  for (const auto& backend : s.config.fleet.channel)
    if (auto e = s.endpoint(backend)) o.channel.emplace_back(backend, e);
  o.limits = s.server_limits;
  o.connect_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(s.config.proxy.server_connect_timeout);
  o.reconnect_interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(s.config.fleet.reconnect_interval);
  return o;
}

}  // namespace

ControlPlane::ControlPlane(DataPlane& plane, const Settings& settings)
    : plane_(plane),
      metrics_(backend_names(settings)),
      exporter_(metrics_),
      cutover_metrics_(metrics_),
      traffic_(plane),
      store_(settings.config.proxy.state_file),
      engine_(traffic_, store_, cutover_options(settings, plane.active()), &observer_) {
  const AdminSettings& a = settings.config.admin;
  admin_options_.listen_addr = a.listen_addr;
  admin_options_.port = a.listen_port;
  admin_options_.token = a.token;
  admin_options_.tls_cert_file = a.tls_cert_file;
  admin_options_.tls_key_file = a.tls_key_file;
}

ControlPlane::~ControlPlane() {
  stop();
  observer_.on_change(nullptr);  // nothing runs commands any more; the agent goes first
}

bool ControlPlane::start(std::string& error) {
  const Config& config = plane_.settings()->config;
  const bool fleet = config.fleet.enabled;
  if (admin_options_.token.empty() && !fleet) {
    log::warn("admin_api_disabled", {{"reason", "[admin] token is empty"},
                                     {"fix", "set [admin] token to enable cutover commands"}});
    return true;
  }
  // The routes answer the admin API's HTTP requests and the fleet channel's commands alike.
  auto admin = std::make_unique<AdminServer>(admin_options_);
  AdminRouteOptions routes;
  routes.metrics_text = [this] {
    auto total = std::make_unique<Stats>();  // ~10 KB: every set added up
    add_up_stats(*total);
    exporter_.refresh(*total, plane_.active().backend);
    return metrics_.render_text();
  };
  routes.publish_lag = [this](const LagReading& r) {
    double at =
        r.measured_at_unix > 0
            ? r.measured_at_unix
            : std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    metrics_.publish_lag(r.ok, r.bytes, r.seconds, r.direction, at);
  };
  routes.ready = [this](std::string& body) {
    ReadinessAnswer a = readiness_.check();
    body = render_readiness(a);
    return a.ready;
  };
  routes.routes_json = [this] {
    auto table = plane_.routes();
    return table ? render_routes_json(*table, plane_.settings()->config) : std::string("[]");
  };
  const std::string member =
      !fleet ? std::string()
             : (config.fleet.name.empty() ? default_member_name() : config.fleet.name);
  routes.fleet_member = member;
  register_admin_routes(*admin, engine_, routes);
  if (fleet) {
    // Before the admin API listens: the engine's observer must be wired before any command.
    const bool http = !admin_options_.token.empty();
    agent_ = std::make_unique<FleetAgent>(
        fleet_agent_options(
            *plane_.settings(), member,
            http ? admin_options_.listen_addr + ":" + std::to_string(admin_options_.port)
                 : std::string()),
        [router = admin.get()](const HttpRequest& r) { return router->dispatch(r); },
        [this] {
          CutoverEngine::Position p = engine_.position();
          return MemberState{std::string(to_string(p.state)), p.backend, p.epoch};
        });
    observer_.on_change([agent = agent_.get()] { agent->member_changed(); });
    plane_.on_fenced_write(
        [agent = agent_.get()] { agent->recheck_authority("the active backend is fenced"); });
    // Resumed by its own timer: the controller, or this proxy's control sessions, went away
    // mid-cutover, and the fleet may be elsewhere by now.
    observer_.on_dead_man(
        [agent = agent_.get()] { agent->recheck_authority("resumed by the dead-man timer"); });
  }
  if (!admin_options_.token.empty()) {
    if (!admin->start(error)) return false;
    admin_listening_ = true;
  } else {
    log::info("admin_api_off", {{"reason", "[admin] token is empty; [fleet] carries commands"}});
  }
  admin_ = std::move(admin);
  // The agent itself starts in sync_fleet(), once the shards run: a command it finds (a pause)
  // needs them.
  return true;
}

void ControlPlane::sync_fleet() {
  if (!agent_) return;
  agent_->start();
  // Told the phase before the first client: a pause in progress, a flip this proxy missed.
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      plane_.settings()->config.proxy.server_connect_timeout);
  if (!agent_->wait_first_sync(wait))
    log::warn("fleet_not_synced", {{"waited_ms", std::to_string(wait.count())},
                                   {"consequence",
                                    "serving on the state file's backend until a channel "
                                    "database answers"}});
}

void ControlPlane::inherit(HandoverGrant& grant) {
  admin_options_.inherited_listener = grant.sockets.admin;
  if (admin_options_.token.empty() && grant.sockets.admin >= 0) ::close(grant.sockets.admin);
  long pid = grant.predecessor_pid;
  engine_.hold("handing over from the previous proxy process (pid " + std::to_string(pid) +
               "), which still serves its clients until they finish (at most "
               "proxy.shutdown_timeout); retry when it has exited");
  predecessor_ =
      std::make_unique<PredecessorWatch>(grant.link, pid, [this] { engine_.release_hold(); });
  grant.link = -1;
}

void ControlPlane::offer_handover() {
  std::string path = handover_socket_path(plane_.settings()->config.proxy.state_file);
  auto decide = [this](const HandoverRequest& r) {
    HandoverOffer::Decision d;
    if (r.config_digest != plane_.config_digest()) {
      d.refusal =
          "its configuration file differs from the one this proxy loaded; give it the "
          "same file (or reload this proxy with SIGHUP first)";
      return d;
    }
    ActiveBackend active = plane_.active();
    if (r.epoch != active.epoch) {
      d.refusal = "its state file says epoch " + std::to_string(r.epoch) + ", this proxy serves " +
                  active.backend + " at epoch " + std::to_string(active.epoch);
      return d;
    }
    d.sockets = plane_.listening_sockets();
    if (d.sockets.client_tcp < 0) {
      d.refusal = "this proxy is shutting down";
      return d;
    }
    std::string why_not;
    if (!engine_.try_hold("handed over to pid " + std::to_string(r.pid) +
                              "; this process is "
                              "shutting down",
                          why_not)) {
      d.refusal = why_not;
      return d;
    }
    if (admin_) d.sockets.admin = admin_->listener();
    d.clients = plane_.client_count().load();
    d.revoke = [this] { engine_.release_hold(); };
    return d;
  };
  offer_ = std::make_unique<HandoverOffer>(path, decide,
                                           [this](long) { plane_.request_shutdown(true); });
  std::string error;
  if (!offer_->start(error)) {
    log::warn("handover_unavailable", {{"error", error}});
    offer_.reset();
  }
}

void ControlPlane::stop() {
  if (offer_) offer_->stop();
  if (predecessor_) predecessor_->stop();
  engine_.stop();  // first: a fleet command blocked in a drain returns
  // Stopped, not destroyed: the engine's observer may still poke it until the admin API stops.
  if (agent_) agent_->stop();
  if (admin_) {
    admin_->stop();
    admin_.reset();
  }
}

}  // namespace pgcutover::proxy
