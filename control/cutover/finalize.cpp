// finalize: after the rollback window, remove everything the migration left behind
// (subscriptions, slots, publications in both directions, the trigger method's triggers,
// functions, logs and schema, the fence on the source), and
// say what to do with the Heroku add-on. Refuses while any proxy is not running on target:
// finalizing removes the way back.
#include "control/command/exit_codes.h"
#include "control/command/proxy_fleet.h"
#include "control/cutover/fence.h"
#include "control/cutover/flip.h"
#include "control/replication/method.h"

namespace pgcutover::control {

namespace json = boost::json;

int cmd_flip(CommandContext& ctx) {
  return run_cutover(ctx, Direction::kForward);
}
int cmd_revert(CommandContext& ctx) {
  return run_cutover(ctx, Direction::kBackward);
}
int cmd_recover(CommandContext& ctx) {
  return run_recover(ctx);
}

int cmd_finalize(CommandContext& ctx) {
  ProxyFleet fleet(ctx.settings.proxies, std::chrono::seconds(5));
  std::string fleet_problems;
  fleet.join_fleet(ctx.settings, ctx.connect_timeout, fleet_problems);
  auto st = fleet.status();
  for (const auto& a : st)
    if (!ctx.args.has("force") && (!a.ok || a.state != "running" || a.backend != "target"))
      return ctx.fail(kExitCheckFailed, "proxy " + a.admin_url + " is not running on target (" +
                                            (a.ok ? a.state + " on " + a.backend : a.error) +
                                            "): finalize removes the way back; --force to go on");
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  auto admin = [&](const char* opt, const std::optional<ConnSpec>& fb, const char* role) {
    std::optional<ConnSpec> spec = fb;
    std::string e;
    if (ctx.args.has(opt)) spec = ConnSpec::parse(ctx.args.get(opt), e);
    return ctx.connect(spec, role, std::string("--") + opt);
  };
  auto source_admin = admin("source-subscriber-url", ctx.settings.source, "source");
  if (!source_admin) return kExitUsage;
  auto target_admin = admin("subscriber-url", ctx.settings.target, "target");
  if (!target_admin) return kExitUsage;
  // The fence makes the app role's new sessions read-only (default_transaction_read_only):
  // without a superuser (Heroku) finalize connects as that role, and must write.
  for (PgConn* c : {&*source, &*source_admin, &*target_admin})
    c->exec_script("SET default_transaction_read_only = off");
  std::vector<std::string> done, problems;
  // Every method's leftovers, whichever method ran: an earlier attempt may have used another.
  for (const ReplicationMethod* m : replication_methods())
    m->clean_up(*source, *target, *source_admin, *target_admin, done, problems);
  auto roles = ctx.args.all("fence-role");
  if (roles.empty()) roles.push_back(source->spec().get("user"));
  FenceResult u = unfence(*source_admin, roles);
  if (u.ok)
    done.push_back("fence removed on the source");
  else
    problems.push_back(u.error);
  unfence(*target_admin, roles);
  std::string heroku =
      "Heroku: the application's DATABASE_URL (or the config var it reads) already points at "
      "the proxy, so the add-on can no longer redirect it. Take a final backup (heroku "
      "pg:backups:capture), then detach and destroy the Postgres add-on (heroku addons:detach / "
      "addons:destroy) when the rollback window is over; Heroku would otherwise rewrite "
      "DATABASE_URL on credential rotation or maintenance.";
  if (ctx.json) {
    ctx.print_json(json::object{{"ok", problems.empty()},
                                {"done", json::array(done.begin(), done.end())},
                                {"problems", json::array(problems.begin(), problems.end())},
                                {"next", heroku}});
  } else {
    for (const auto& d : done) *ctx.out << d << "\n";
    for (const auto& p : problems) *ctx.out << "could not: " << p << "\n";
    *ctx.out << heroku << "\n";
  }
  return problems.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace pgcutover::control
