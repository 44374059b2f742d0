#include "control/cli/fleet.h"

#include <cstdio>

#include "control/command/exit_codes.h"
#include "control/command/fleet_channel.h"

namespace pgcutover::control {

namespace json = boost::json;

int cmd_fleet_setup(CommandContext& ctx) {
  json::array done;
  int created = 0;
  for (const auto& [side, spec] :
       {std::pair{"source", ctx.settings.source}, std::pair{"target", ctx.settings.target}}) {
    if (!spec) continue;
    auto conn = ctx.connect(
        spec, side,
        side == std::string("source") ? ctx.settings.source_origin : ctx.settings.target_origin);
    if (!conn) return kExitUsage;
    conn->exec_script("SET default_transaction_read_only = off");
    PgError e;
    if (!setup_fleet_schema(*conn, e))
      return ctx.fail(kExitCheckFailed,
                      std::string(side) + " (" + conn->spec().display() +
                          "): creating the fleet schema: " + e.message +
                          " (the role needs CREATE on the database, as the application's owner "
                          "has on Heroku and RDS; no superuser, no extension)");
    ++created;
    done.emplace_back(json::object{{"database", side}, {"at", conn->spec().display()}});
    ctx.say(std::string(side) +
            ": fleet schema ready (pgcutover.fleet_member, fleet_command, "
            "fleet_ack, fleet_authority) on " +
            conn->spec().display());
  }
  if (created == 0)
    return ctx.fail(kExitUsage,
                    "no source or target configured (-c FILE, or --source-url / "
                    "--target-url)");
  ctx.say("next: start the proxies with [fleet] enabled = true; `pgcutoverctl fleet` lists them");
  if (ctx.json) ctx.print_json(json::object{{"ok", true}, {"databases", done}});
  return kExitOk;
}

int cmd_fleet(CommandContext& ctx) {
  std::vector<std::string> problems;
  auto ch = FleetChannel::open(ctx.settings, ctx.connect_timeout, problems);
  if (!ch) {
    std::string why;
    for (const auto& p : problems) why += (why.empty() ? "" : "; ") + p;
    return ctx.fail(kExitCheckFailed, "no fleet channel: " + why);
  }
  auto members = ch->members();
  auto authority = ch->authority();
  int live = 0;
  json::array arr;
  for (const auto& m : members) {
    live += m.live;
    json::array in;
    for (const auto& d : m.live_in) in.emplace_back(d);
    arr.emplace_back(json::object{{"name", m.name},
                                  {"live", m.live},
                                  {"live_in", in},
                                  {"state", m.state},
                                  {"backend", m.backend},
                                  {"epoch", m.epoch},
                                  {"host", m.host},
                                  {"pid", m.pid},
                                  {"version", m.version},
                                  {"admin", m.admin},
                                  {"seen_ago_s", m.seen_ago_s}});
  }
  json::array auth;
  for (const auto& a : authority) {
    json::object o{{"database", a.database}};
    if (a.backend) {
      o["backend"] = *a.backend;
      o["epoch"] = a.epoch;
    }
    auth.push_back(o);
  }
  if (ctx.json) {
    json::array dbs, probs;
    for (const auto& d : ch->databases()) dbs.emplace_back(d);
    for (const auto& p : problems) probs.emplace_back(p);
    ctx.print_json(json::object{{"ok", true},
                                {"databases", dbs},
                                {"problems", probs},
                                {"live", live},
                                {"members", arr},
                                {"authority", auth}});
    return kExitOk;
  }
  std::string dbs;
  for (const auto& d : ch->databases()) dbs += (dbs.empty() ? "" : ", ") + d;
  ctx.say("fleet channel: " + dbs + "; " + std::to_string(live) + " live member(s)");
  for (const auto& p : problems) ctx.say("  (" + p + ")");
  char line[512];
  std::snprintf(line, sizeof line, "  %-28s %-9s %-8s %-7s %-6s %s", "NAME", "LIVE", "STATE",
                "BACKEND", "EPOCH", "HOST / LAST SEEN");
  ctx.say(line);
  for (const auto& m : members) {
    std::string where;
    for (const auto& d : m.live_in) where += (where.empty() ? "" : "+") + d;
    std::snprintf(line, sizeof line, "  %-28s %-9s %-8s %-7s %-6llu %s%s", m.name.c_str(),
                  m.live ? where.c_str() : "vanished", m.state.c_str(), m.backend.c_str(),
                  static_cast<unsigned long long>(m.epoch), m.host.c_str(),
                  m.live ? "" : (", " + format_seconds(m.seen_ago_s) + " ago").c_str());
    ctx.say(line);
  }
  for (const auto& a : authority)
    ctx.say("authority in " + a.database + ": " +
            (a.backend ? *a.backend + " at epoch " + std::to_string(a.epoch)
                       : std::string("none yet (no flip through this version)")));
  return kExitOk;
}

}  // namespace pgcutover::control
