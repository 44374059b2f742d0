#include "control/cli/traffic.h"

#include "control/command/exit_codes.h"
#include "control/command/proxy_fleet.h"

namespace pgcutover::control {

namespace json = boost::json;

namespace {

long seconds_option(CommandContext& ctx, const char* name, long fallback_ms) {
  return ctx.args.has(name) ? static_cast<long>(std::stod(ctx.args.get(name)) * 1000) : fallback_ms;
}

// Every proxy: [[control.proxies]] and the live fleet members. Prints why when there is none.
bool gather(CommandContext& ctx, ProxyFleet& fleet) {
  std::string problems;
  fleet.join_fleet(ctx.settings, ctx.connect_timeout, problems);
  if (fleet.size() > 0) return true;
  ctx.fail(kExitUsage,
           "no proxies: none in [[control.proxies]] and no live fleet member" +
               (problems.empty() ? std::string() : " (fleet channel: " + problems + ")"));
  return false;
}

int report(CommandContext& ctx, const char* what, const std::vector<ProxyAnswer>& answers,
           json::object extra) {
  bool ok = all_ok(answers);
  for (const auto& a : answers)
    ctx.say("  " + a.admin_url + "  " +
            (a.ok ? a.state + " on " + a.backend + ", epoch " + std::to_string(a.epoch)
                  : a.result + ": " + a.error));
  if (ctx.json) {
    extra["ok"] = ok;
    extra["command"] = what;
    extra["proxies"] = to_json(answers);
    ctx.print_json(extra);
  }
  return ok ? kExitOk : kExitCheckFailed;
}

}  // namespace

int cmd_pause(CommandContext& ctx) {
  ProxyFleet fleet(ctx.settings.proxies,
                   std::chrono::milliseconds(seconds_option(ctx, "admin-timeout", 5000)));
  if (!gather(ctx, fleet)) return kExitUsage;
  const long drain = seconds_option(ctx, "drain-timeout", 5000);
  const long max_pause = seconds_option(ctx, "max-pause", 30000);
  auto a = fleet.pause(static_cast<int>(drain), static_cast<int>(max_pause));
  json::object extra{{"max_pause_ms", max_pause}};
  if (!all_ok(a)) {
    // All or none: the proxies that did pause resume, so no part of the application waits for
    // a pause the others refused.
    std::vector<size_t> paused;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].ok) paused.push_back(i);
    auto r = fleet.call(paused, "POST", "/v1/resume", {}, std::chrono::milliseconds(5000));
    ctx.say("pause refused by " + describe_failures(a) + "; the " + std::to_string(paused.size()) +
            " paused proxy(ies) resumed" + (all_ok(r) ? "" : " except: " + describe_failures(r)));
    extra["resumed"] = to_json(r);
    return report(ctx, "pause", a, extra);
  }
  ctx.say(std::to_string(a.size()) +
          " proxies paused: new transactions wait; `pgcutoverctl resume` "
          "lets them go (each proxy resumes by itself after " +
          std::to_string(max_pause / 1000) + " s)");
  return report(ctx, "pause", a, extra);
}

int cmd_resume(CommandContext& ctx) {
  ProxyFleet fleet(ctx.settings.proxies,
                   std::chrono::milliseconds(seconds_option(ctx, "admin-timeout", 5000)));
  if (!gather(ctx, fleet)) return kExitUsage;
  auto a = fleet.resume();
  double worst = 0;
  int held = 0;
  for (const auto& x : a) {
    held += x.clients_held;
    if (x.client_wait_worst_ms) worst = std::max(worst, *x.client_wait_worst_ms);
  }
  if (all_ok(a))
    ctx.say(std::to_string(a.size()) + " proxies running; " + std::to_string(held) +
            " client(s) were held, the longest for " + std::to_string(static_cast<long>(worst)) +
            " ms");
  return report(ctx, "resume", a, json::object{{"clients_held", held}, {"write_pause_ms", worst}});
}

}  // namespace pgcutover::control
