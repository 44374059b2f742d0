#include "control/preflight/preflight.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "control/command/exit_codes.h"
#include "control/db/capabilities.h"
#include "control/db/catalog.h"
#include "control/db/control_state.h"
#include "control/preflight/route_checks.h"
#include "control/replication/method.h"

namespace pgcutover::control {
namespace {

namespace json = boost::json;

// "a, b, c and 4 more": keeps a report line readable on a database with 500 tables.
std::string list_names(const std::vector<std::string>& names, size_t max = 6) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += " and " + std::to_string(names.size() - max) + " more";
  return out;
}

json::array to_json_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// What the method being judged needs; nothing while no method is chosen.
std::optional<MethodNeeds> needs_of(const std::string& method) {
  const ReplicationMethod* m = find_method(method);
  return m ? std::optional<MethodNeeds>(m->needs()) : std::nullopt;
}

// Whether the source allows a method at all.
bool possible_on(const SourceCapabilities& caps, const MethodNeeds& n) {
  if (n.logical_decoding && !caps.logical_possible()) return false;
  if (n.table_ownership && !(caps.superuser || caps.owns_all_tables)) return false;
  return true;
}

// A problem that only matters to continuous replication: fail when that is the method,
// pass for dump, warn while no method is chosen.
CheckStatus for_continuous(const std::string& method) {
  auto needs = needs_of(method);
  if (!needs) return CheckStatus::kWarn;
  return needs->continuous ? CheckStatus::kFail : CheckStatus::kPass;
}

Check query_failed(const std::string& id, const std::string& side, const PgError& e) {
  return {id,
          CheckStatus::kFail,
          "could not read the " + side + ": " + e.message,
          "run preflight with a role that can read the catalogs (the database owner)",
          {}};
}

Check check_versions(PgConn& source, PgConn& target) {
  Check c{"versions", CheckStatus::kPass, "", "", {}};
  int sv = source.server_version(), tv = target.server_version();
  auto show = [](PgConn& conn) { return conn.value("SHOW server_version").value_or("?"); };
  int smaj = sv / 10000, tmaj = tv / 10000;
  c.found = "source " + show(source) + ", target " + show(target);
  c.data["source_version_num"] = sv;
  c.data["target_version_num"] = tv;
  if (tmaj < smaj) {
    c.status = CheckStatus::kFail;
    c.found += ": the target is an older major version";
    c.fix = "use a target of PostgreSQL " + std::to_string(smaj) +
            " or newer (pg_dump output and logical replication do not go backwards reliably)";
  } else if (tmaj > smaj + 2) {
    c.status = CheckStatus::kWarn;
    c.found += ": " + std::to_string(tmaj - smaj) + " major versions apart";
    c.fix = "test the application against PostgreSQL " + std::to_string(tmaj) +
            " first; large version skews change planner and behaviour";
  } else if (tmaj > smaj) {
    c.found += " (upgrade by " + std::to_string(tmaj - smaj) + " major version)";
  }
  // pg_dump must be at least as new as the source server it dumps.
  FILE* p = popen("pg_dump --version 2>/dev/null", "r");
  std::string out;
  if (p) {
    char buf[128];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  int dump_major = 0;
  if (auto pos = out.find_first_of("0123456789"); pos != std::string::npos)
    dump_major = std::atoi(out.c_str() + pos);
  c.data["pg_dump_major"] = dump_major;
  if (dump_major == 0) {
    c.status = std::max(c.status, CheckStatus::kWarn);
    c.found += "; pg_dump not found on this machine";
    c.fix = "install the PostgreSQL client tools (version >= " + std::to_string(smaj) +
            "): schema copy and the dump method need pg_dump, pg_restore and psql";
  } else if (dump_major < smaj) {
    c.status = CheckStatus::kFail;
    c.found += "; local pg_dump is " + std::to_string(dump_major) + ", older than the source";
    c.fix = "install PostgreSQL " + std::to_string(smaj) + " client tools";
  }
  return c;
}

Check check_logical(const SourceCapabilities& caps, const std::string& role,
                    const std::string& method) {
  Check c{"logical_replication", CheckStatus::kPass, "", "", {}};
  c.data["wal_level"] = caps.wal_level;
  c.data["superuser"] = caps.superuser;
  c.data["replication"] = caps.replication_role;
  c.data["owns_all_tables"] = caps.owns_all_tables;
  c.data["free_replication_slots"] = caps.free_replication_slots;
  json::array possible;
  for (const ReplicationMethod* m : replication_methods())
    if (possible_on(caps, m->needs())) possible.emplace_back(m->name());
  c.data["possible_methods"] = possible;
  c.data["available"] = caps.logical_possible();
  std::string methods;
  for (size_t i = 0; i < possible.size(); ++i)
    methods += (i ? ", " : "") + std::string(possible[i].as_string());
  if (caps.logical_possible()) {
    c.found = "native logical replication is available (wal_level=logical, role " + role +
              (caps.superuser ? " is superuser" : " has REPLICATION and owns the tables") +
              "); possible methods: " + methods;
    return c;
  }
  c.found =
      "native logical replication is unavailable on this source: " + caps.logical_blockers(role) +
      "; possible methods: " + methods;
  if (caps.superuser || caps.owns_all_tables) {
    c.found += " (recommended: trigger, since " + role + " owns all " +
               std::to_string(caps.tables) + " tables)";
    c.data["recommended_method"] = "trigger";
  } else {
    c.found += " (recommended: dump)";
    c.data["recommended_method"] = "dump";
  }
  auto needs = needs_of(method);
  c.status = needs && needs->logical_decoding ? CheckStatus::kFail : CheckStatus::kWarn;
  c.fix =
      "use --method trigger (change capture with triggers, needs only table ownership) or "
      "--method dump (copy inside the cutover window); on Heroku, logical replication needs a "
      "plan that exposes it (wal_level=logical and a REPLICATION role)";
  return c;
}

Check check_target_subscription(PgConn& subscriber, const std::string& method, bool separate) {
  Check c{"target_subscription", CheckStatus::kPass, "", "", {}};
  bool can = target_can_subscribe(subscriber);
  c.data["can_create_subscription"] = can;
  std::string who = subscriber.spec().get("user");
  if (can) {
    c.found = "role " + who + " can CREATE SUBSCRIPTION on the target";
    return c;
  }
  auto needs = needs_of(method);
  c.status = needs && needs->target_subscription ? CheckStatus::kFail : CheckStatus::kWarn;
  c.found = "role " + who + " cannot CREATE SUBSCRIPTION on the target (PostgreSQL " +
            std::to_string(subscriber.server_version() / 10000) +
            " needs superuser, rds_superuser on RDS, or pg_create_subscription on 16+)";
  c.fix = separate ? "use a --subscriber-url whose role may create subscriptions"
                   : "pass --subscriber-url with the RDS master user (rds_superuser), or grant "
                     "the role what it needs; only the logical method needs this";
  return c;
}

Check check_extensions(PgConn& source, PgConn& target) {
  Check c{"extensions", CheckStatus::kPass, "", "", {}};
  PgResult src = source.exec(
      "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e "
      "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1");
  if (!src) return query_failed(c.id, "source", src.error());
  PgResult tgt = target.exec(
      "SELECT a.name, a.default_version, a.installed_version, "
      "array_to_string(ARRAY(SELECT v.version FROM pg_available_extension_versions v "
      "WHERE v.name = a.name), ',') FROM pg_available_extensions a");
  if (!tgt) return query_failed(c.id, "target", tgt.error());
  struct Avail {
    std::string def, installed;
    std::set<std::string> versions;
  };
  std::map<std::string, Avail> avail;
  for (int i = 0; i < tgt.rows(); ++i) {
    Avail a{tgt.get(i, 1), tgt.get(i, 2), {}};
    std::stringstream ss(tgt.get(i, 3));
    for (std::string v; std::getline(ss, v, ',');) a.versions.insert(v);
    avail[tgt.get(i, 0)] = a;
  }
  std::vector<std::string> missing, version_diff, heroku_ext, listing;
  json::array items;
  for (int i = 0; i < src.rows(); ++i) {
    std::string name = src.get(i, 0), ver = src.get(i, 1), schema = src.get(i, 2);
    json::object o{{"name", name}, {"source_version", ver}, {"schema", schema}};
    listing.push_back(name + " " + ver + (schema != "public" ? " in " + schema : ""));
    if (schema == "heroku_ext") heroku_ext.push_back(name);
    auto it = avail.find(name);
    if (it == avail.end()) {
      missing.push_back(name + " " + ver);
      o["target"] = "not available";
    } else {
      o["target_default_version"] = it->second.def;
      o["target_installed_version"] = it->second.installed;
      const std::string& have =
          it->second.installed.empty() ? it->second.def : it->second.installed;
      if (have != ver && !it->second.versions.count(ver))
        version_diff.push_back(name + " " + ver + " -> " + have);
    }
    items.push_back(o);
  }
  c.data["extensions"] = items;
  c.data["missing_on_target"] = to_json_array(missing);
  c.found = std::to_string(src.rows()) + " on the source (" + list_names(listing, 10) + ")";
  if (!missing.empty()) {
    c.status = CheckStatus::kFail;
    c.found += "; not available on the target: " + list_names(missing);
    c.fix =
        "install the missing extensions' packages on the target (on RDS: check "
        "rds.extensions / the supported-extensions list) or remove their use from the schema";
  } else if (!version_diff.empty()) {
    c.status = CheckStatus::kWarn;
    c.found += "; different versions on the target: " + list_names(version_diff);
    c.fix = "check the extensions' release notes; schema copy creates the target's version";
  }
  if (!heroku_ext.empty()) {
    c.status = std::max(c.status, CheckStatus::kWarn);
    c.found += "; in schema heroku_ext: " + list_names(heroku_ext);
    if (!c.fix.empty()) c.fix += "; ";
    c.fix +=
        "schema copy creates schema heroku_ext on the target and these extensions in it, so "
        "references like heroku_ext.citext keep working; keep heroku_ext in the app's "
        "search_path";
  }
  return c;
}

Check check_primary_keys(const std::vector<TableInfo>& tables, const std::string& method) {
  Check c{"primary_keys", CheckStatus::kPass, "", "", {}};
  std::vector<std::string> insert_only, updated;
  // The trigger method logs changes by primary key: a replica identity does not help it.
  auto needs = needs_of(method);
  bool trigger = needs && needs->primary_keys;
  for (const auto& t : tables) {
    if (trigger ? t.has_primary_key : t.has_replica_identity()) continue;
    (t.updates_and_deletes == 0 ? insert_only : updated).push_back(t.display());
  }
  c.data["insert_only_without_key"] = to_json_array(insert_only);
  c.data["updated_without_key"] = to_json_array(updated);
  if (insert_only.empty() && updated.empty()) {
    c.found = "every table has a primary key or replica identity";
    return c;
  }
  c.found = std::to_string(insert_only.size() + updated.size()) +
            " table(s) without primary key or replica identity: " + list_names([&] {
              auto all = insert_only;
              all.insert(all.end(), updated.begin(), updated.end());
              return all;
            }());
  if (!updated.empty()) {
    c.found += "; UPDATE/DELETE seen on " + list_names(updated);
    c.status = for_continuous(method);
  } else {
    c.found += " (insert-only so far: replicated as insert-only, validated as a whole)";
    c.status = needs && !needs->continuous ? CheckStatus::kPass : CheckStatus::kWarn;
  }
  c.fix = trigger ? "add a primary key: ALTER TABLE ... ADD PRIMARY KEY (...), or promote an "
                    "existing unique index on NOT NULL columns with ALTER TABLE ... ADD "
                    "CONSTRAINT ... PRIMARY KEY USING INDEX <index> (the trigger method logs "
                    "changes by primary key; insert-only tables are logged by whole row)"
                  : "add a primary key (ALTER TABLE ... ADD PRIMARY KEY), or ALTER TABLE ... "
                    "REPLICA IDENTITY USING INDEX <unique index> / REPLICA IDENTITY FULL; a "
                    "published table without one makes the application's UPDATE and DELETE "
                    "fail on the source";
  return c;
}

Check check_unlogged(const std::vector<TableInfo>& tables, const std::string& method) {
  Check c{"unlogged_tables", CheckStatus::kPass, "", "", {}};
  std::vector<std::string> names;
  for (const auto& t : tables)
    if (t.unlogged) names.push_back(t.display());
  c.data["tables"] = to_json_array(names);
  if (names.empty()) {
    c.found = "no unlogged tables";
    return c;
  }
  c.status = for_continuous(method);
  c.found =
      std::to_string(names.size()) + " unlogged table(s), not replicated: " + list_names(names);
  c.fix =
      "ALTER TABLE ... SET LOGGED before replicating (rewrites the table into the WAL), or "
      "accept that their contents are copied only by the dump method";
  return c;
}

Check check_large_objects(PgConn& source, const std::string& method) {
  Check c{"large_objects", CheckStatus::kPass, "", "", {}};
  PgResult r = source.exec("SELECT count(*) FROM pg_largeobject_metadata");
  if (!r) return query_failed(c.id, "source", r.error());
  int64_t n = r.get_int(0, 0);
  c.data["count"] = n;
  if (n == 0) {
    c.found = "no large objects";
    return c;
  }
  c.status = for_continuous(method);
  c.found = std::to_string(n) +
            " large object(s) (pg_largeobject_metadata): logical replication does not copy them";
  c.fix =
      "move them to bytea columns, or copy them at cutover (pg_dump --large-objects "
      "--data-only) and freeze writes to them; the dump method copies them";
  return c;
}

Check check_sequences(PgConn& source) {
  Check c{"sequences", CheckStatus::kPass, "", "", {}};
  PgResult r = source.exec(std::string(R"SQL(
SELECT n.nspname || '.' || s.relname,
       (SELECT t.relname || '.' || a.attname FROM pg_depend d
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1)
FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE s.relkind = 'S' AND )SQL") +
                           kUserSchemaFilter + R"SQL(
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = s.oid AND d.deptype = 'e')
ORDER BY 1)SQL");
  if (!r) return query_failed(c.id, "source", r.error());
  std::vector<std::string> unowned;
  for (int i = 0; i < r.rows(); ++i)
    if (r.is_null(i, 1)) unowned.push_back(r.get(i, 0));
  c.data["count"] = r.rows();
  c.data["not_owned_by_a_column"] = to_json_array(unowned);
  c.found = std::to_string(r.rows()) +
            " sequence(s); replication does not carry their values (the flip sets them on the "
            "target)";
  if (!unowned.empty()) {
    c.status = CheckStatus::kWarn;
    c.found += "; not owned by any column: " + list_names(unowned);
    c.fix =
        "nothing to do for the flip (it syncs every sequence by name); if the application "
        "calls nextval() on these directly, check they exist on the target after schema copy";
  }
  return c;
}

Check check_generated(const std::vector<TableInfo>& tables) {
  Check c{"generated_columns", CheckStatus::kPass, "", "", {}};
  std::vector<std::string> cols;
  for (const auto& t : tables)
    for (const auto& col : t.columns)
      if (col.generated) cols.push_back(t.display() + "." + col.name);
  c.data["columns"] = to_json_array(cols);
  if (cols.empty()) {
    c.found = "no generated columns";
  } else {
    c.found = std::to_string(cols.size()) +
              " generated column(s), computed again on the target rather than replicated: " +
              list_names(cols);
  }
  return c;
}

Check check_sessions(PgConn& source, const ControlSettings& s) {
  Check c{"source_sessions", CheckStatus::kPass, "", "", {}};
  PgResult r = source.exec(
      "SELECT coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local socket' "
      "ELSE 'hidden' END), coalesce(nullif(application_name, ''), '-'), coalesce(usename, '-'), "
      "count(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid() AND backend_type = 'client backend' GROUP BY 1, 2, 3 "
      "ORDER BY 4 DESC");
  if (!r) return query_failed(c.id, "source", r.error());
  std::set<std::string> proxies(s.proxy_addrs.begin(), s.proxy_addrs.end());
  json::array groups;
  int64_t total = 0, bypassing = 0;
  std::vector<std::string> bypass_desc, all_desc;
  for (int i = 0; i < r.rows(); ++i) {
    std::string addr = r.get(i, 0), app = r.get(i, 1), user = r.get(i, 2);
    int64_t n = r.get_int(i, 3);
    bool via_proxy = proxies.count(addr) != 0;
    groups.push_back(json::object{{"client_addr", addr},
                                  {"application_name", app},
                                  {"user", user},
                                  {"sessions", n},
                                  {"via_proxy", via_proxy}});
    total += n;
    std::string d = std::to_string(n) + " from " + addr + " (" + app + ", " + user + ")";
    all_desc.push_back(d);
    if (!via_proxy) {
      bypassing += n;
      bypass_desc.push_back(d);
    }
  }
  c.data["sessions"] = groups;
  c.data["total"] = total;
  if (total == 0) {
    c.found = "no other client sessions on the source";
    return c;
  }
  if (proxies.empty()) {
    c.status = CheckStatus::kWarn;
    c.found = std::to_string(total) + " other client session(s): " + list_names(all_desc, 5) +
              "; which of them come through the proxy is unknown";
    c.fix =
        "pass --proxy-addr with the address(es) the proxies connect from; every other "
        "client (workers, cron, consoles) must be pointed at the proxy before the cutover, "
        "or it keeps writing to the old database";
    return c;
  }
  c.data["bypassing"] = bypassing;
  if (bypassing == 0) {
    c.found = std::to_string(total) + " client session(s), all from the proxies";
    return c;
  }
  c.status = CheckStatus::kWarn;
  c.found = std::to_string(bypassing) +
            " session(s) do not come through the proxy: " + list_names(bypass_desc, 5);
  c.fix =
      "point those clients at the proxy (DATABASE_URL) before the cutover; the fence will "
      "end them, and until then they write to the source only";
  return c;
}

Check check_connections(PgConn& target, const ControlSettings& s) {
  Check c{"target_connections", CheckStatus::kPass, "", "", {}};
  PgResult r = target.exec(
      "SELECT current_setting('max_connections')::int, "
      "current_setting('superuser_reserved_connections')::int, "
      "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')");
  if (!r) return query_failed(c.id, "target", r.error());
  int64_t max = r.get_int(0, 0), reserved = r.get_int(0, 1), used = r.get_int(0, 2);
  int64_t usable = max - reserved;
  c.data["max_connections"] = max;
  c.data["superuser_reserved_connections"] = reserved;
  c.data["in_use"] = used;
  if (!s.have_config || s.default_pool_size <= 0) {
    c.found = "max_connections " + std::to_string(max) + " (" + std::to_string(usable) +
              " for non-superusers); pool sizes unknown without -c";
    c.status = CheckStatus::kWarn;
    c.fix = "run preflight with -c so the proxies' pool sizes can be compared";
    return c;
  }
  int64_t proxies = std::max<int64_t>(1, static_cast<int64_t>(s.proxies.size()));
  int64_t pools = std::max(1, s.pool_count);
  // Every proxy may fill every (database, user) pool; replication and the control plane
  // need a few more (apply + table-sync workers, validate's --jobs).
  int64_t needed = proxies * pools * s.default_pool_size;
  int64_t headroom = 10;
  c.data["proxy_pool_connections"] = needed;
  c.found = "max_connections " + std::to_string(max) + " (" + std::to_string(usable) +
            " usable) vs " + std::to_string(needed) + " for the proxies (" +
            std::to_string(proxies) + " proxy x " + std::to_string(pools) + " pool x " +
            std::to_string(s.default_pool_size) + ")";
  if (needed + headroom > usable) {
    c.status = CheckStatus::kFail;
    c.fix = "raise max_connections on the target (RDS parameter group) to at least " +
            std::to_string(needed + headroom + reserved) + ", or lower default_pool_size";
  } else if (needed + headroom > usable * 8 / 10) {
    c.status = CheckStatus::kWarn;
    c.fix = "little headroom left for consoles, migrations and replication workers";
  }
  return c;
}

// Is TLS enforced? Opens one connection with sslmode=disable and expects the server to refuse.
Check check_tls(PgConn& conn, const std::string& side) {
  Check c{side + "_tls", CheckStatus::kPass, "", "", {}};
  bool in_use = conn.ssl_in_use();
  c.data["ssl_in_use"] = in_use;
  std::string sslmode = conn.spec().get("sslmode");
  ConnSpec plain = conn.spec();
  plain.set("sslmode", "disable");
  plain.set("sslrootcert", "");
  PgError e;
  bool host_is_socket = !plain.get("host").empty() && plain.get("host")[0] == '/';
  auto p = PgConn::connect(plain, std::chrono::seconds(5), side, e);
  bool plaintext_accepted = p.has_value() && !host_is_socket;
  c.data["plaintext_refused"] = !plaintext_accepted;
  std::vector<std::string> problems;
  if (!in_use && !host_is_socket) problems.push_back("this connection is not encrypted");
  if (plaintext_accepted) problems.push_back("the server accepts connections without TLS");
  if (!host_is_socket &&
      (sslmode.empty() || sslmode == "disable" || sslmode == "allow" || sslmode == "prefer"))
    problems.push_back("sslmode is '" + (sslmode.empty() ? "prefer" : sslmode) +
                       "', which does not require TLS");
  if (problems.empty()) {
    c.found = "TLS in use (sslmode=" + sslmode + "), connections without TLS are refused";
    if (side == "target" && sslmode != "verify-full") {
      c.status = CheckStatus::kWarn;
      c.found = "TLS enforced, but sslmode=" + sslmode + " does not verify the server";
      c.fix = "use sslmode=verify-full with the RDS CA bundle (sslrootcert)";
    }
    return c;
  }
  c.status = CheckStatus::kFail;
  c.found = list_names(problems);
  c.fix = side == "target"
              ? "set rds.force_ssl=1 in the parameter group (or hostssl-only pg_hba) and use "
                "sslmode=verify-full with the RDS CA bundle"
              : "use sslmode=require (or stronger) in the source URL; Heroku requires TLS";
  return c;
}

Check check_ownership(PgConn& source, const std::vector<TableInfo>& tables) {
  Check c{"ownership", CheckStatus::kPass, "", "", {}};
  std::string me = source.value("SELECT current_user").value_or("?");
  PgResult r = source.exec(std::string(R"SQL(
SELECT pg_get_userbyid(c.relowner), count(*)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND )SQL") +
                           kUserSchemaFilter + R"SQL(
  AND NOT pg_has_role(c.relowner, 'USAGE')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
GROUP BY 1 ORDER BY 2 DESC)SQL");
  if (!r) return query_failed(c.id, "source", r.error());
  PgResult g = source.exec(std::string(R"SQL(
SELECT DISTINCT grantee FROM information_schema.role_table_grants
WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'pgcutover')
  AND grantee NOT IN (current_user, 'PUBLIC'))SQL"));
  std::vector<std::string> others, grantees;
  for (int i = 0; i < r.rows(); ++i) others.push_back(r.get(i, 0) + " (" + r.get(i, 1) + ")");
  if (g)
    for (int i = 0; i < g.rows(); ++i) grantees.push_back(g.get(i, 0));
  c.data["current_user"] = me;
  c.data["other_owners"] = to_json_array(others);
  c.data["grantees"] = to_json_array(grantees);
  int owned = 0;
  for (const auto& t : tables) owned += t.owned_by_current_user;
  c.found = me + " owns " + std::to_string(owned) + " of " + std::to_string(tables.size()) +
            " tables; schema copy restores with --no-owner --no-acl (everything owned by the "
            "target's role)";
  if (!others.empty() || !grantees.empty()) {
    c.status = CheckStatus::kWarn;
    if (!others.empty()) c.found += "; owned by other roles: " + list_names(others);
    if (!grantees.empty()) c.found += "; privileges granted to: " + list_names(grantees);
    c.fix =
        "create those roles on the target and re-run their GRANTs (and ALTER ... OWNER) "
        "after schema copy; pgcutover copies no roles or privileges";
  }
  return c;
}

Check check_target_schema(PgConn& target) {
  Check c{"target_schema", CheckStatus::kPass, "", "", {}};
  PgError e;
  auto tables = list_user_tables(target, false, e);
  if (!tables) return query_failed(c.id, "target", e);
  c.data["tables"] = static_cast<int64_t>(tables->size());
  if (tables->empty()) {
    c.found = "the target has no user tables yet";
    c.fix = "run `pgcutoverctl schema copy` next";
  } else {
    c.found = "the target has " + std::to_string(tables->size()) + " user table(s)";
    c.fix = "run `pgcutoverctl schema diff` to compare them with the source";
  }
  return c;
}

// The way back after the flip: what `revert` can bring back, per method. A method without one
// makes the flip the point of no return; the operator should know that at T-7 days.
Check check_way_back(PgConn& source, PgConn& target, const std::string& method) {
  Check c{"way_back", CheckStatus::kPass, "", "", {}};
  c.data["method"] = method;
  const ReplicationMethod* m = method.empty() ? nullptr : find_method(method);
  const WayBackKinds kinds = m ? m->way_back_kinds() : WayBackKinds{};
  bool logical_captured = false;  // a capture because the source's role cannot subscribe
  if (kinds.reverse_subscription) {
    bool can = target_can_subscribe(source);  // the same test, on the source's role
    c.data["reverse_subscription"] = can;
    if (can) {
      c.found =
          "the source's role can subscribe: the flip builds reverse replication, revert "
          "loses nothing";
      return c;
    }
    // Otherwise the flip gives the target the trigger method's capture: judged below.
    logical_captured = kinds.target_capture;
  }
  if (kinds.target_capture) {
    PgError e;
    auto tables = list_user_tables(target, false, e);
    if (!tables) return query_failed(c.id, "target", e);
    std::vector<std::string> not_owned;
    for (const auto& t : *tables)
      if (!t.owned_by_current_user) not_owned.push_back(t.display());
    c.data["target_tables"] = static_cast<int64_t>(tables->size());
    c.data["not_owned"] = to_json_array(not_owned);
    std::string why = logical_captured
                          ? "the source's role cannot CREATE SUBSCRIPTION (superuser on "
                            "PostgreSQL 15, never on Heroku), so "
                          : "";
    c.data["way_back"] = "trigger capture on the target";
    if (not_owned.empty()) {
      c.found =
          why +
          "the way back is the trigger capture on the target: `flip` installs it (table "
          "ownership only)" +
          (logical_captured ? " and disables the forward subscription when it arms it" : "") +
          ", `replicate apply --reverse` carries the target's writes to the fenced source, "
          "revert loses nothing" +
          std::string(tables->empty() ? " (no tables on the target yet: flip checks again)" : "");
      return c;
    }
    c.status = CheckStatus::kWarn;
    c.found = why + "the target's role does not own " + list_names(not_owned) +
              ": the flip cannot install the way-back capture there, and a revert would lose "
              "the target's writes";
    c.fix =
        "ALTER TABLE ... OWNER TO the target URL's role (schema copy makes it the owner of "
        "everything it creates)" +
        std::string(logical_captured
                        ? ", or pass --source-subscriber-url with a role that can subscribe"
                        : "");
    return c;
  }
  if (method.empty()) {
    c.found =
        "no method chosen: logical and trigger keep a way back (a reverse subscription when "
        "the source can subscribe, else a trigger capture on the target: table ownership "
        "only); dump and external have none";
    return c;
  }
  c.status = CheckStatus::kWarn;
  c.found = "the " + method +
            " method has no way back: a revert after the first write on the "
            "target loses writes (revert --accept-data-loss)";
  c.fix =
      "choose --method trigger (table ownership only) or logical where the source can "
      "subscribe, if going back must lose nothing";
  return c;
}

}  // namespace

std::vector<Check> run_preflight(PgConn& source, PgConn& target, const ControlSettings& settings,
                                 const std::string& method,
                                 const std::optional<ConnSpec>& subscriber) {
  std::vector<Check> checks;
  checks.push_back(check_versions(source, target));
  SourceCapabilities caps;
  PgError e;
  std::string role = source.spec().get("user");
  if (read_source_capabilities(source, caps, e)) {
    checks.push_back(check_logical(caps, role, method));
  } else {
    checks.push_back(query_failed("logical_replication", "source", e));
  }
  if (subscriber) {
    PgError se;
    auto sub = PgConn::connect(*subscriber, std::chrono::seconds(10), "subscriber", se);
    if (sub)
      checks.push_back(check_target_subscription(*sub, method, true));
    else
      checks.push_back(
          {"target_subscription", CheckStatus::kFail, se.message, "check --subscriber-url", {}});
  } else {
    checks.push_back(check_target_subscription(target, method, false));
  }
  checks.push_back(check_extensions(source, target));
  auto tables = list_user_tables(source, true, e);
  if (tables) {
    checks.push_back(check_primary_keys(*tables, method));
    checks.push_back(check_unlogged(*tables, method));
  } else {
    checks.push_back(query_failed("primary_keys", "source", e));
  }
  checks.push_back(check_large_objects(source, method));
  checks.push_back(check_sequences(source));
  if (tables) checks.push_back(check_generated(*tables));
  checks.push_back(check_sessions(source, settings));
  checks.push_back(check_connections(target, settings));
  checks.push_back(check_tls(source, "source"));
  checks.push_back(check_tls(target, "target"));
  if (tables) checks.push_back(check_ownership(source, *tables));
  checks.push_back(check_target_schema(target));
  checks.push_back(check_way_back(source, target, method));
  for (auto& c : check_routes(source, target, settings)) checks.push_back(std::move(c));
  return checks;
}

int cmd_preflight(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  std::string method = ctx.args.get("method");
  if (method.empty()) method = recorded_method(*target);
  auto subscriber = ctx.subscriber_spec();
  if (ctx.args.has("subscriber-url") && !subscriber) return kExitUsage;
  auto checks = run_preflight(*source, *target, ctx.settings, method,
                              ctx.args.has("subscriber-url") ? subscriber : std::nullopt);
  int rc = exit_code_for(checks);
  if (ctx.json) {
    json::array arr;
    for (const auto& c : checks) arr.push_back(to_json(c));
    ctx.print_json(json::object{{"ok", rc == kExitOk},
                                {"method", method},
                                {"source", source->spec().display()},
                                {"target", target->spec().display()},
                                {"checks", arr}});
    return rc;
  }
  *ctx.out << "preflight: source " << source->spec().display() << ", target "
           << target->spec().display()
           << (method.empty() ? std::string(" (no method chosen)") : ", method " + method)
           << "\n\n";
  int fails = 0, warns = 0;
  for (const auto& c : checks) {
    print_check(*ctx.out, c);
    fails += c.status == CheckStatus::kFail;
    warns += c.status == CheckStatus::kWarn;
  }
  *ctx.out << "\n"
           << checks.size() << " checks: " << checks.size() - fails - warns << " pass, " << warns
           << " warn, " << fails << " fail\n";
  return rc;
}

}  // namespace pgcutover::control
