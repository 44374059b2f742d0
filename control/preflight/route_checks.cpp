#include "control/preflight/route_checks.h"

#include <set>

namespace pgcutover::control {
namespace {

namespace json = boost::json;

// What a route's backend on one side says about itself.
struct ReplicaState {
  bool reachable = false;
  std::string error;
  bool in_recovery = false;
  std::optional<double> replay_age_s;  // now() - pg_last_xact_replay_timestamp()
  std::optional<int64_t> unreplayed_bytes;
};

ReplicaState read_replica_state(const ConnSpec& spec, const std::string& label) {
  ReplicaState st;
  PgError e;
  auto conn = PgConn::connect(spec, std::chrono::seconds(10), label, e);
  if (!conn) {
    st.error = e.message;
    return st;
  }
  PgResult r = conn->exec(
      "SELECT pg_is_in_recovery(), "
      "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, "
      "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint");
  if (!r) {
    st.error = r.error().message;
    return st;
  }
  st.reachable = true;
  st.in_recovery = r.get_bool(0, 0);
  if (!r.is_null(0, 1)) st.replay_age_s = r.get_double(0, 1);
  if (!r.is_null(0, 2)) st.unreplayed_bytes = r.get_int(0, 2);
  return st;
}

// The primary's view of its standbys (pg_stat_replication; rows of other roles need
// pg_monitor, which RDS's master user has and Heroku's default credential does not).
json::array standbys_of(PgConn& primary) {
  json::array out;
  PgResult r = primary.exec(
      "SELECT coalesce(nullif(application_name, ''), '-'), coalesce(host(client_addr), 'local'), "
      "coalesce(state, '?'), coalesce(extract(epoch FROM replay_lag), 0)::float8 "
      "FROM pg_stat_replication");
  if (!r) return out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(json::object{{"application_name", r.get(i, 0)},
                               {"client_addr", r.get(i, 1)},
                               {"state", r.get(i, 2)},
                               {"replay_lag_s", r.get_double(i, 3)}});
  }
  return out;
}

std::string describe_lag(const ReplicaState& st) {
  if (!st.in_recovery) return "not a replica";
  std::string s = "replica";
  if (st.unreplayed_bytes) s += ", " + std::to_string(*st.unreplayed_bytes) + " bytes to replay";
  if (st.replay_age_s) {
    s += ", last replayed commit " + std::to_string(static_cast<int64_t>(*st.replay_age_s)) +
         " s ago";
  }
  return s;
}

// Client sessions on the follower that do not come from a proxy.
struct Bypass {
  bool ok = false;
  int64_t total = 0;
  int64_t bypassing = 0;
  std::vector<std::string> who;
};

Bypass follower_sessions(const ConnSpec& spec, const std::set<std::string>& proxies) {
  Bypass b;
  PgError e;
  auto conn = PgConn::connect(spec, std::chrono::seconds(10), "follower", e);
  if (!conn) return b;
  // Sessions of other roles show no backend_type or address without pg_read_all_stats: they
  // are counted too (a dashboard with its own Heroku credential is exactly who to find).
  PgResult r = conn->exec(
      "SELECT CASE WHEN backend_type IS NULL THEN 'hidden (another role)' "
      "ELSE coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local socket' "
      "ELSE 'hidden' END) END, coalesce(nullif(application_name, ''), '-'), "
      "coalesce(usename, '-'), count(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid() AND (backend_type = 'client backend' OR backend_type IS NULL) "
      "GROUP BY 1, 2, 3 ORDER BY 4 DESC");
  if (!r) return b;
  b.ok = true;
  for (int i = 0; i < r.rows(); ++i) {
    int64_t n = r.get_int(i, 3);
    b.total += n;
    if (proxies.empty() || !proxies.count(r.get(i, 0))) {
      b.bypassing += n;
      b.who.push_back(std::to_string(n) + " from " + r.get(i, 0) + " (" + r.get(i, 1) + ", " +
                      r.get(i, 2) + ")");
    }
  }
  return b;
}

Check check_route(const RouteSpec& route, const json::array& source_standbys,
                  const json::array& target_standbys, const ControlSettings& settings) {
  Check c{"route_" + route.name, CheckStatus::kPass, "", "", {}};
  c.data["database"] = route.database;
  c.data["read_only"] = route.read_only;
  c.data["follower_sessions"] = 0;
  c.data["follower_sessions_bypassing"] = 0;
  std::vector<std::string> found, fixes;
  auto raise = [&](CheckStatus s) { c.status = std::max(c.status, s); };
  // One backend of a side (a route may list several readers).
  auto one = [&](const char* name, const std::string& backend, const ConnSpec& spec,
                 const json::array& standbys) -> json::object {
    ReplicaState st = read_replica_state(spec, backend);
    json::object d{{"backend", backend}, {"reachable", st.reachable}};
    if (!st.reachable) {
      raise(CheckStatus::kFail);
      found.push_back(std::string(name) + " " + backend + " unreachable: " + st.error);
      fixes.push_back("make [backends." + backend + "] reachable with its credentials");
      return d;
    }
    d["in_recovery"] = st.in_recovery;
    if (st.replay_age_s) d["replay_age_s"] = *st.replay_age_s;
    if (st.unreplayed_bytes) d["unreplayed_bytes"] = *st.unreplayed_bytes;
    d["primary_standbys"] = standbys;
    found.push_back(std::string(name) + " " + backend + ": " + describe_lag(st));
    if (route.read_only && !st.in_recovery) {
      raise(CheckStatus::kWarn);
      fixes.push_back(backend +
                      " accepts writes (not in recovery): a read-only route is "
                      "meant for a follower / read replica; the proxy still makes "
                      "its transactions read-only");
    }
    // Over 16 MB behind: the replica serves noticeably old data (a reporting follower that
    // fell behind, or a read replica still catching up after creation).
    if (st.unreplayed_bytes && *st.unreplayed_bytes > 16 * 1024 * 1024) {
      raise(CheckStatus::kWarn);
      fixes.push_back(backend + " has " + std::to_string(*st.unreplayed_bytes) +
                      " bytes of WAL not replayed yet: check its replication before the cutover");
    }
    return d;
  };
  auto side = [&](const char* name, const std::vector<std::pair<std::string, ConnSpec>>& list,
                  const json::array& standbys) {
    json::array out;
    if (list.empty()) {
      raise(CheckStatus::kFail);
      found.push_back(std::string(name) + ": no backend");
      fixes.push_back("add " + std::string(name) + " = \"<backend>\" to routes." + route.name +
                      ".backends: a flip moves every route");
    }
    for (const auto& [backend, spec] : list) out.push_back(one(name, backend, spec, standbys));
    c.data[name] = out;
  };
  side("source", route.source, source_standbys);
  side("target", route.target, target_standbys);

  std::set<std::string> proxies(settings.proxy_addrs.begin(), settings.proxy_addrs.end());
  for (const auto& [follower, spec] : route.source) {
    Bypass b = follower_sessions(spec, proxies);
    if (b.ok) {
      c.data["follower_sessions"] = b.total + c.data["follower_sessions"].to_number<int64_t>();
      c.data["follower_sessions_bypassing"] =
          b.bypassing + c.data["follower_sessions_bypassing"].to_number<int64_t>();
      if (b.bypassing > 0) {
        raise(CheckStatus::kWarn);
        std::string who;
        for (size_t i = 0; i < b.who.size() && i < 5; ++i) who += (i ? ", " : "") + b.who[i];
        found.push_back(
            std::to_string(b.bypassing) + " session(s) on " + follower +
            (proxies.empty() ? " (which are the proxies' is unknown)" : " not from the proxies") +
            ": " + who);
        fixes.push_back(
            "point those readers at the proxy with database name \"" + route.database +
            "\" (they would keep reading the old follower after the cutover)" +
            (proxies.empty() ? "; pass --proxy-addr so the proxies' own sessions are known" : ""));
      }
    }
  }
  for (size_t i = 0; i < found.size(); ++i) c.found += (i ? "; " : "") + found[i];
  c.found = "database \"" + route.database + "\"" + (route.read_only ? " (read-only)" : "") + ": " +
            c.found;
  for (size_t i = 0; i < fixes.size(); ++i) c.fix += (i ? "; " : "") + fixes[i];
  return c;
}

}  // namespace

std::vector<Check> check_routes(PgConn& source, PgConn& target, const ControlSettings& settings) {
  std::vector<Check> out;
  if (settings.routes.empty()) return out;
  json::array source_standbys = standbys_of(source);
  json::array target_standbys = standbys_of(target);
  for (const auto& route : settings.routes)
    out.push_back(check_route(route, source_standbys, target_standbys, settings));
  return out;
}

}  // namespace pgcutover::control
