#include "control/cli/run_lock.h"

#include <unistd.h>

#include <vector>

#include "common/fleet_contract.h"
#include "control/command/exit_codes.h"

namespace pgcutover::control {

namespace {

// "pgcutoverctl flip pid 4242 on laptop-b": the holder as others see it in pg_stat_activity.
std::string holder_name(const char* command) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string s = std::string("pgcutoverctl ") + command + " pid " + std::to_string(::getpid()) +
                  (host[0] ? std::string(" on ") + host : std::string());
  return s.substr(0, 63);  // application_name's limit
}

// Who holds the lock in this database, in words; empty when nobody does any more.
std::string describe_holder(PgConn& c) {
  PgResult r = c.exec(
      "SELECT a.pid, coalesce(nullif(a.application_name, ''), '(no application_name)'),"
      " coalesce(host(a.client_addr), 'a local socket'),"
      " coalesce(round(extract(epoch FROM now() - a.backend_start))::bigint, 0)"
      " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
      " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
      " AND l.classid = $1::bigint::oid AND l.objid = ($2::bigint & 4294967295)::oid"
      " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      {std::to_string(fleet::kFleetLockClass), std::to_string(kCutoverLockKey)});
  if (!r || r.rows() == 0) return {};
  return "'" + r.get(0, 1) + "' (server pid " + r.get(0, 0) + ", from " + r.get(0, 2) + ", for " +
         r.get(0, 3) + " s)";
}

}  // namespace

int with_cutover_lock(CommandContext& ctx, const char* command, int (*handler)(CommandContext&),
                      std::chrono::seconds wait) {
  const std::string me = holder_name(command);
  std::vector<PgConn> held;  // the lock lives as long as these sessions
  for (const auto& [side, spec] :
       {std::pair{"source", ctx.settings.source}, std::pair{"target", ctx.settings.target}}) {
    if (!spec) continue;
    PgError e;
    auto c = PgConn::connect(*spec, ctx.connect_timeout, side, e);
    if (!c) continue;  // the command connects again and reports it
    // A dead controller's session must not keep the lock for the kernel's two hours: the
    // server probes an idle peer after 5 s and gives up after 3 unanswered probes.
    c->exec_script("SET application_name = " + c->quote_literal(me) +
                   "; SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;"
                   " SET tcp_keepalives_count = 3");
    // Without a wait, one try. With one (recover: a dead controller's session may linger), the
    // server wakes us when the lock is released, or refuses after lock_timeout.
    const std::string key_class = std::to_string(fleet::kFleetLockClass);
    const std::string key = std::to_string(kCutoverLockKey);
    bool mine = false, answered = false;
    if (wait.count() == 0) {
      auto got = c->value("SELECT pg_try_advisory_lock($1::int, $2::int)", {key_class, key});
      answered = got.has_value();
      mine = got && *got == "t";
    } else {
      c->exec_script("SET lock_timeout = '" + std::to_string(wait.count()) + "s'");
      PgResult r = c->exec("SELECT pg_advisory_lock($1::int, $2::int)", {key_class, key});
      answered = r.ok() || r.error().sqlstate == "55P03";  // lock_not_available
      mine = r.ok();
      c->exec_script("RESET lock_timeout");
    }
    if (!answered) continue;  // the session broke: the command meets the same problem, says so
    if (!mine) {
      std::string who = describe_holder(*c);
      return ctx.fail(
          kExitCheckFailed,
          std::string("another cutover run holds the cutover lock in the ") + side + ": " +
              (who.empty() ? std::string("a session that has just ended; run the command again")
                           : who) +
              ". Nothing was done. Wait for that run to end and check `pgcutoverctl fleet` (or "
              "`status`); if that controller is gone, its lock goes with its session within "
              "about 15 s (`pg_terminate_backend` on that pid ends it at once)");
    }
    held.push_back(std::move(*c));
  }
  return handler(ctx);
}

}  // namespace pgcutover::control
