// What the source's role may do, read from the catalog: what decides which replication
// methods are possible there.
#include "control/db/capabilities.h"

#include <algorithm>

#include "control/db/catalog.h"

namespace pgcutover::control {

std::string SourceCapabilities::logical_blockers(const std::string& role) const {
  std::vector<std::string> why;
  if (wal_level != "logical") why.push_back("wal_level=" + wal_level + " (needs logical)");
  if (!superuser && !replication_role)
    why.push_back("role " + role + " has neither REPLICATION nor superuser");
  if (!superuser && !owns_all_tables)
    why.push_back("role " + role + " does not own every table (CREATE PUBLICATION needs it)");
  if (free_replication_slots <= 0)
    why.push_back("no free replication slot (max_replication_slots)");
  std::string out;
  for (size_t i = 0; i < why.size(); ++i) out += (i ? ", " : "") + why[i];
  return out;
}

bool read_source_capabilities(PgConn& source, SourceCapabilities& caps, PgError& error) {
  PgResult r = source.exec(
      "SELECT current_setting('wal_level'), r.rolsuper, r.rolreplication, "
      "current_setting('max_replication_slots')::int - "
      "(SELECT count(*) FROM pg_replication_slots) "
      "FROM pg_roles r WHERE r.rolname = current_user");
  if (!r || r.rows() != 1) {
    error = r ? PgError{"current role not found in pg_roles", "", "", ""} : r.error();
    return false;
  }
  caps.wal_level = r.get(0, 0);
  caps.superuser = r.get_bool(0, 1);
  caps.replication_role = r.get_bool(0, 2);
  caps.free_replication_slots = static_cast<int>(r.get_int(0, 3));
  auto tables = list_user_tables(source, false, error);
  if (!tables) return false;
  caps.tables = static_cast<int>(tables->size());
  caps.owns_all_tables = std::all_of(tables->begin(), tables->end(),
                                     [](const TableInfo& t) { return t.owned_by_current_user; });
  return true;
}

bool target_can_subscribe(PgConn& target) {
  auto v = target.value(
      "SELECT r.rolsuper "
      " OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') "
      "     AND pg_has_role(current_user, 'rds_superuser', 'MEMBER')) "
      " OR (current_setting('server_version_num')::int >= 160000 "
      "     AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_create_subscription') "
      "     AND pg_has_role(current_user, 'pg_create_subscription', 'MEMBER')) "
      "FROM pg_roles r WHERE r.rolname = current_user");
  return v && *v == "t";
}

}  // namespace pgcutover::control
