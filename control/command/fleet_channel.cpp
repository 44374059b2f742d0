#include "control/command/fleet_channel.h"

#include <poll.h>
#include <unistd.h>

#include <map>
#include <random>

#include "common/fleet_contract.h"

namespace pgcutover::control {

namespace {

using Clock = std::chrono::steady_clock;

std::string random_hex(std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::random_device rd;
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += digits[rd() % 16];
  return s;
}

// Reads what arrived on the session and drops the notifications (the caller re-reads the
// table: a notification only says "look again"). True when there was one, including one libpq
// queued while it read a query's result.
bool drain_notifications(PgConn& c) {
  bool any = false;
  PQconsumeInput(c.raw());
  while (PGnotify* n = PQnotifies(c.raw())) {
    any = true;
    PQfreemem(n);
  }
  return any;
}

}  // namespace

bool setup_fleet_schema(PgConn& conn, PgError& error) {
  PgResult r = conn.exec_script(std::string(fleet::schema_sql()));
  if (!r) error = r.error();
  return r.ok();
}

std::unique_ptr<FleetChannel> FleetChannel::open(const ControlSettings& settings,
                                                 std::chrono::seconds connect_timeout,
                                                 std::vector<std::string>& problems) {
  auto ch = std::make_unique<FleetChannel>();
  for (const auto& [side, spec] :
       {std::pair{"source", settings.source}, std::pair{"target", settings.target}}) {
    if (!spec) continue;
    PgError e;
    auto c = PgConn::connect(*spec, connect_timeout, side, e);
    if (!c) {
      problems.push_back(std::string(side) + ": " + e.message);
      continue;
    }
    auto has = c->value("SELECT to_regclass('pgcutover.fleet_command') IS NOT NULL");
    if (!has || *has != "t") {
      problems.push_back(std::string(side) + ": no fleet schema (`pgcutoverctl fleet setup`)");
      continue;
    }
    // Writable on a fenced side too (its own statement: a multi-statement string is one
    // transaction, read-only from its start on a fenced role). The shared fleet lock marks it
    // as a control session, which the fence spares. Answers wake us through LISTEN.
    c->exec_script("SET default_transaction_read_only = off");
    PgResult r = c->exec_script(
        "SET application_name = 'pgcutoverctl'; SELECT pg_advisory_lock_shared(" +
        std::to_string(fleet::kFleetLockClass) + ", 0); LISTEN " + std::string(fleet::kAckChannel) +
        "; DELETE FROM pgcutover.fleet_command WHERE expires_at < now() - interval '1 hour';"
        " DELETE FROM pgcutover.fleet_ack WHERE acked_at < now() - interval '1 hour'");
    if (!r) {
      problems.push_back(std::string(side) + ": " + r.error().message);
      continue;
    }
    ch->dbs_.push_back(Db{side, std::move(*c)});
  }
  if (ch->dbs_.empty()) return nullptr;
  return ch;
}

std::vector<std::string> FleetChannel::databases() const {
  std::vector<std::string> out;
  for (const auto& d : dbs_) out.push_back(d.side);
  return out;
}

std::vector<FleetAuthority> FleetChannel::authority() {
  std::vector<FleetAuthority> out;
  for (auto& db : dbs_) {
    FleetAuthority a{db.side, std::nullopt, 0};
    PgResult r = db.conn.exec("SELECT backend, epoch FROM pgcutover.fleet_authority");
    if (r && r.rows() > 0) {
      a.backend = r.get(0, 0);
      a.epoch = static_cast<std::uint64_t>(r.get_int(0, 1));
    }
    out.push_back(a);
  }
  return out;
}

std::vector<FleetMember> FleetChannel::members() {
  std::map<std::string, FleetMember> by_name;
  const std::string lock_class = std::to_string(fleet::kFleetLockClass);
  for (auto& db : dbs_) {
    PgResult r = db.conn.exec(
        "SELECT m.name, m.host, m.version, m.admin, m.backend, m.state, m.epoch, m.pid,"
        " EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND"
        " l.classid = " +
        lock_class +
        " AND l.objid = m.lock_key AND l.objsubid = 2"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),"
        " extract(epoch FROM now() - m.seen_at)::float8 FROM pgcutover.fleet_member m");
    if (!r) continue;
    for (int i = 0; i < r.rows(); ++i) {
      FleetMember m;
      m.name = r.get(i, 0);
      m.host = r.get(i, 1);
      m.version = r.get(i, 2);
      m.admin = r.get(i, 3);
      m.backend = r.get(i, 4);
      m.state = r.get(i, 5);
      m.epoch = static_cast<std::uint64_t>(r.get_int(i, 6));
      m.pid = static_cast<int>(r.get_int(i, 7));
      m.live = r.get_bool(i, 8);
      m.seen_ago_s = r.get_double(i, 9);
      if (m.live) m.live_in.push_back(db.side);
      auto [it, fresh] = by_name.emplace(m.name, m);
      if (fresh) continue;
      FleetMember& known = it->second;
      // The freshest row describes the member; live anywhere is live.
      if (m.seen_ago_s < known.seen_ago_s) {
        auto live_in = known.live_in;
        known = m;
        known.live_in = live_in;
        if (m.live) known.live_in.push_back(db.side);
      } else if (m.live) {
        known.live_in.push_back(db.side);
      }
      known.live = !known.live_in.empty();
    }
  }
  std::vector<FleetMember> out;
  for (auto& [name, m] : by_name)
    if (m.live) out.push_back(m);
  for (auto& [name, m] : by_name)
    if (!m.live) out.push_back(m);
  return out;
}

std::vector<FleetAnswer> FleetChannel::send(const std::string& method, const std::string& path,
                                            const std::vector<FleetCommand>& commands,
                                            std::chrono::milliseconds timeout,
                                            const std::optional<std::string>& broadcast_body,
                                            std::chrono::milliseconds broadcast_ttl,
                                            const std::vector<std::string>& broadcast_except) {
  std::vector<FleetAnswer> out(commands.size());
  if (commands.empty()) return out;
  const std::string key = random_hex(12) + "-" + std::to_string(++sent_);
  // Arrays as text literals for unnest(): members and bodies, each element quoted.
  auto array_of = [](const std::vector<std::string>& v) {
    std::string a = "{";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) a += ',';
      a += '"';
      for (char c : v[i]) {
        if (c == '"' || c == '\\') a += '\\';
        a += c;
      }
      a += '"';
    }
    return a + "}";
  };
  std::vector<std::string> members, bodies;
  for (const auto& c : commands) {
    members.push_back(c.member);
    bodies.push_back(c.body);
  }
  if (broadcast_body) {
    members.emplace_back("*");
    bodies.push_back(*broadcast_body);
  }
  const std::string expires = std::to_string(timeout.count()) + " milliseconds";
  const std::string broadcast_expires =
      std::to_string(std::max(timeout, broadcast_ttl).count()) + " milliseconds";
  int written = 0;
  std::string problems;
  for (auto& db : dbs_) {
    drain_notifications(db.conn);
    // A long `lag --watch --publish` sends a command every few seconds: keep the tables small.
    if (sent_ % 200 == 0)
      db.conn.exec_script(
          "DELETE FROM pgcutover.fleet_command WHERE expires_at < now() - interval '1 hour';"
          " DELETE FROM pgcutover.fleet_ack WHERE acked_at < now() - interval '1 hour'");
    // One statement: the rows and the NOTIFY commit together.
    PgResult put = db.conn.exec(
        "WITH old AS (UPDATE pgcutover.fleet_command SET expires_at = clock_timestamp()"
        " WHERE target = '*' AND expires_at > clock_timestamp() AND $7::boolean),"
        " ins AS (INSERT INTO pgcutover.fleet_command (key, target, method, path, body,"
        " expires_at, except_members) SELECT $1, t.member, $2, $3, t.body, clock_timestamp() +"
        " (CASE WHEN t.member = '*' THEN $8 ELSE $4 END)::interval,"
        " CASE WHEN t.member = '*' THEN $9::text[] ELSE '{}' END"
        " FROM unnest($5::text[], $6::text[]) AS t(member, body) RETURNING 1),"
        " n AS (SELECT pg_notify('" +
            std::string(fleet::kCommandChannel) +
            "', $1))"
            " SELECT count(*) FROM ins, n",
        {key, method, path, expires, array_of(members), array_of(bodies),
         broadcast_body ? "true" : "false", broadcast_expires, array_of(broadcast_except)});
    if (put)
      ++written;
    else
      problems +=
          (problems.empty() ? "" : "; ") + db.side + ": " + put.error().message +
          (put.error().sqlstate == "42703" ? " (run `pgcutoverctl fleet setup` again)" : "");
  }
  if (written == 0) {
    for (auto& a : out) a.problem = "the command could not be written: " + problems;
    return out;
  }
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < commands.size(); ++i) index[commands[i].member] = i;
  std::size_t missing = commands.size();
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto& db : dbs_) {
      PgResult r = db.conn.exec(
          "SELECT member, status, body FROM pgcutover.fleet_ack WHERE key = $1", {key});
      if (!r) continue;
      for (int i = 0; i < r.rows(); ++i) {
        auto it = index.find(r.get(i, 0));
        if (it == index.end() || out[it->second].answered) continue;
        FleetAnswer& a = out[it->second];
        a.answered = true;
        a.status = static_cast<int>(r.get_int(i, 1));
        a.body = r.get(i, 2);
        a.via = db.side;
        --missing;
      }
    }
    if (missing == 0) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    // An answer committed while we read: look again at once. Else sleep until an answer's
    // NOTIFY arrives on any database (or the deadline).
    bool woken = false;
    for (auto& db : dbs_) woken |= drain_notifications(db.conn);
    if (woken) continue;
    std::vector<pollfd> fds;
    for (auto& db : dbs_) fds.push_back(pollfd{PQsocket(db.conn.raw()), POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
  }
  return out;
}

std::string FleetChannel::record_authority(const std::string& backend, std::uint64_t epoch) {
  std::string problems;
  for (auto& db : dbs_) {
    PgResult r = db.conn.exec(
        "INSERT INTO pgcutover.fleet_authority (backend, epoch) VALUES ($1, $2::bigint)"
        " ON CONFLICT (only_row) DO UPDATE SET backend = EXCLUDED.backend,"
        " epoch = EXCLUDED.epoch, updated_at = now()",
        {backend, std::to_string(epoch)});
    if (!r) problems += (problems.empty() ? "" : "; ") + db.side + ": " + r.error().message;
  }
  return problems;
}

std::string FleetChannel::record_run_begin(const std::string& run, const std::string& direction,
                                           const std::string& controller,
                                           const std::string& begin_data) {
  std::string problems;
  for (auto& db : dbs_) {
    PgResult r = db.conn.exec(
        "INSERT INTO pgcutover.cutover_run (run, direction, controller, begin_data)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (only_row) DO UPDATE SET run = EXCLUDED.run,"
        " direction = EXCLUDED.direction, controller = EXCLUDED.controller,"
        " begin_data = EXCLUDED.begin_data, started_at = now(), ended_at = NULL, outcome = NULL",
        {run, direction, controller, begin_data});
    if (!r)
      problems += (problems.empty() ? "" : "; ") + db.side + ": " + r.error().message +
                  (r.error().sqlstate == "42P01" ? " (run `pgcutoverctl fleet setup` again)" : "");
  }
  return problems;
}

std::string FleetChannel::record_run_end(const std::string& run, const std::string& outcome) {
  std::string problems;
  for (auto& db : dbs_) {
    PgResult r = db.conn.exec(
        "UPDATE pgcutover.cutover_run SET ended_at = now(), outcome = $2 WHERE run = $1",
        {run, outcome});
    if (!r) problems += (problems.empty() ? "" : "; ") + db.side + ": " + r.error().message;
  }
  return problems;
}

std::optional<CutoverRunRecord> FleetChannel::last_run() {
  std::optional<CutoverRunRecord> best;
  for (auto& db : dbs_) {
    PgResult r = db.conn.exec(
        "SELECT run, direction, controller, begin_data, to_char(started_at AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ended_at IS NOT NULL, coalesce(outcome, '')"
        " FROM pgcutover.cutover_run");
    if (!r || r.rows() == 0) continue;
    CutoverRunRecord rec{r.get(0, 0), r.get(0, 1),      r.get(0, 2), r.get(0, 3),
                         r.get(0, 4), r.get_bool(0, 5), r.get(0, 6)};
    if (!best || rec.started_at > best->started_at) {
      best = rec;
    } else if (rec.run == best->run && rec.ended && !best->ended) {
      best->ended = true;  // the end reached one database only
      best->outcome = rec.outcome;
    }
  }
  return best;
}

}  // namespace pgcutover::control
