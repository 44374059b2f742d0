// status: one screen for the operator - proxies, replication, lag, last validation, and the
// next safe step. Never fails because a piece is down: an unreachable proxy or database is
// part of the answer.
#include <ctime>

#include "control/cli/status.h"
#include "control/command/admin_client.h"
#include "control/command/exit_codes.h"
#include "control/command/fleet_channel.h"
#include "control/db/control_state.h"
#include "control/replication/lag.h"
#include "control/replication/method.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;

std::string field(const json::object& o, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = o.find(n);
    if (it == o.end()) continue;
    if (it->value().is_string()) return std::string(it->value().as_string());
    if (!it->value().is_null()) return json::serialize(it->value());
  }
  return "?";
}

}  // namespace

int cmd_status(CommandContext& ctx) {
  json::object report;
  std::vector<std::string> lines;

  // Proxies.
  json::array proxies;
  int proxies_ok = 0;
  for (const auto& p : ctx.settings.proxies) {
    AdminResponse r = admin_request(p, "GET", "/v1/status", std::chrono::seconds(3));
    json::object o{{"admin_url", p.admin_url}};
    if (!r.reachable) {
      o["state"] = "unreachable";
      o["error"] = r.error;
      lines.push_back("  " + p.admin_url + "  unreachable (" + r.error + ")");
    } else if (r.status != 200) {
      o["state"] = "error";
      o["http_status"] = r.status;
      lines.push_back("  " + p.admin_url + "  HTTP " + std::to_string(r.status) +
                      (r.status == 401 || r.status == 403
                           ? " (wrong or missing token: [[control.proxies]] token must equal that "
                             "proxy's [admin] token)"
                           : ""));
    } else {
      boost::system::error_code ec;
      auto v = json::parse(r.body, ec);
      if (ec || !v.is_object()) {
        o["state"] = "error";
        lines.push_back("  " + p.admin_url + "  answered, but not with a JSON object");
      } else {
        auto& s = v.as_object();
        o["status"] = s;
        o["state"] = field(s, {"state"});
        proxies_ok++;
        lines.push_back("  " + p.admin_url + "  " + field(s, {"state"}) + ", epoch " +
                        field(s, {"epoch"}) + ", backend " +
                        field(s, {"backend", "active_backend"}) + ", held clients " +
                        field(s, {"held_clients"}) + ", transactions in flight " +
                        field(s, {"transactions_in_flight"}) +
                        (field(s, {"read_only"}) == "true" ? ", READ-ONLY" : ""));
      }
    }
    proxies.push_back(o);
  }
  report["proxies"] = proxies;

  // The fleet: proxies registered in the databases ([fleet], docs/fleet.md).
  std::vector<std::string> fleet_problems;
  auto channel = FleetChannel::open(ctx.settings, ctx.connect_timeout, fleet_problems);
  json::array fleet;
  int fleet_live = 0;
  std::vector<std::string> fleet_lines;
  if (channel) {
    for (const auto& m : channel->members()) {
      if (!m.live) continue;  // `pgcutoverctl fleet` lists the vanished ones too
      ++fleet_live;
      fleet.push_back(json::object{{"name", m.name},
                                   {"state", m.state},
                                   {"backend", m.backend},
                                   {"epoch", m.epoch},
                                   {"host", m.host}});
      fleet_lines.push_back("  fleet:" + m.name + "  " + m.state + ", epoch " +
                            std::to_string(m.epoch) + ", backend " + m.backend + " (" + m.host +
                            ")");
    }
    report["fleet"] = fleet;
  }

  // Databases, replication, validation.
  PgError se, te;
  auto source = ctx.settings.source
                    ? PgConn::connect(*ctx.settings.source, ctx.connect_timeout, "source", se)
                    : std::nullopt;
  auto target = ctx.settings.target
                    ? PgConn::connect(*ctx.settings.target, ctx.connect_timeout, "target", te)
                    : std::nullopt;
  report["source"] = source ? json::value(source->spec().display())
                            : json::value(ctx.settings.source ? se.message : "not configured");
  report["target"] = target ? json::value(target->spec().display())
                            : json::value(ctx.settings.target ? te.message : "not configured");
  std::string method = target ? recorded_method(*target) : "";
  report["method"] = method;
  std::optional<ReplicationLag> lag;
  const ReplicationMethod* m = find_method(method);
  if (source && target && !method.empty() && (!m || m->needs().continuous)) {
    lag = measure_lag(*source, *target, method, std::chrono::seconds(10));
    report["lag"] = to_json(*lag);
  }
  // After a flip with a method that keeps a capture on the target: how far the way back is.
  std::optional<ReplicationLag> way_back;
  if (source && target && m && m->way_back_installed(*target)) {
    way_back = m->way_back_lag(*source, *target);
    report["way_back"] = to_json(*way_back);
  }
  std::optional<json::object> validation;
  if (target) validation = read_control_state(*target, "validation");
  if (validation) report["last_validation"] = *validation;

  // The next safe step, in the order a migration goes.
  std::string next;
  int64_t now = std::time(nullptr);
  bool validation_ok = validation && validation->contains("ok") && validation->at("ok").is_bool() &&
                       validation->at("ok").as_bool();
  int64_t validated_at = validation && validation->contains("finished_at_unix")
                             ? validation->at("finished_at_unix").to_number<int64_t>()
                             : 0;
  if (!source || !target) {
    next = "fix the database connection(s) above (`pgcutoverctl preflight` says more)";
  } else if (method.empty()) {
    next = "run `pgcutoverctl preflight`, `schema copy`, then `replicate start --method ...`";
  } else if (lag && !lag->ok) {
    next = "replication is not healthy: `pgcutoverctl replicate status`";
  } else if (!validation) {
    next = "run `pgcutoverctl validate`";
  } else if (!validation_ok) {
    next = "the last validation failed: fix the reported ranges, then `pgcutoverctl validate`";
  } else if (now - validated_at > 24 * 3600) {
    next = "the last validation is older than a day: run `pgcutoverctl validate` again";
  } else if (ctx.settings.proxies.empty() && fleet_live == 0) {
    next =
        "configure the proxies ([[control.proxies]], or [fleet] in theirs: docs/fleet.md) and "
        "route the application through them";
  } else if (proxies_ok != static_cast<int>(ctx.settings.proxies.size())) {
    next = "every proxy must be reachable before a flip: check the unreachable ones";
  } else {
    next = "ready to flip: `pgcutoverctl flip --dry-run`, then `pgcutoverctl flip`";
  }
  report["next_step"] = next;
  report["ok"] = true;

  if (ctx.json) {
    ctx.print_json(report);
    return kExitOk;
  }
  auto& out = *ctx.out;
  out << "proxies:\n";
  if (ctx.settings.proxies.empty() && fleet_live == 0)
    out << "  not configured ([[control.proxies]] in -c FILE, or a fleet: docs/fleet.md)\n";
  for (const auto& l : lines) out << l << "\n";
  for (const auto& l : fleet_lines) out << l << "\n";
  out << "databases:\n  source  "
      << (source ? source->spec().display() : "unreachable: " + se.message) << "\n  target  "
      << (target ? target->spec().display() : "unreachable: " + te.message) << "\n";
  out << "replication:\n  method  " << (method.empty() ? "none recorded" : method) << "\n";
  if (lag) out << "  lag     " << describe(*lag) << "\n";
  if (way_back) out << "  way back " << describe(*way_back) << "\n";
  out << "validation:\n  ";
  if (!validation) {
    out << "never run\n";
  } else {
    out << (validation_ok ? "OK" : "FAILED") << ", "
        << format_seconds(static_cast<double>(now - validated_at)) << " ago, "
        << field(*validation, {"tables"}) << " tables, " << field(*validation, {"chunks"})
        << " chunks" << (field(*validation, {"sample"}) == "true" ? " (sample)" : "") << "\n";
  }
  out << "next step:\n  " << next << "\n";
  return kExitOk;
}

}  // namespace pgcutover::control
