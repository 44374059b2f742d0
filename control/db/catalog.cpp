#include "control/db/catalog.h"

#include <map>

namespace pgcutover::control {

std::string TableInfo::qualified() const {
  return qualified_name(schema, name);
}

std::optional<std::vector<TableInfo>> list_user_tables(PgConn& conn, bool with_columns,
                                                       PgError& error) {
  std::string sql = std::string(R"SQL(
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident,
       pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE'),
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident),
       greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid),
       coalesce(s.n_tup_upd + s.n_tup_del, 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND )SQL") +
                    kUserSchemaFilter + R"SQL(
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname)SQL";
  PgResult r = conn.exec(sql);
  if (!r) {
    error = r.error();
    return std::nullopt;
  }
  std::vector<TableInfo> tables;
  std::map<std::string, size_t> by_oid;
  for (int i = 0; i < r.rows(); ++i) {
    TableInfo t;
    t.schema = r.get(i, 1);
    t.name = r.get(i, 2);
    t.kind = r.get(i, 3)[0];
    t.unlogged = r.get(i, 4) == "u";
    t.replica_identity = r.get(i, 5)[0];
    t.owner = r.get(i, 6);
    t.owned_by_current_user = r.get_bool(i, 7);
    t.has_primary_key = r.get_bool(i, 8);
    t.has_identity_index = r.get_bool(i, 9);
    t.estimated_rows = r.get_int(i, 10);
    t.total_bytes = r.get_int(i, 11);
    t.updates_and_deletes = r.get_int(i, 12);
    by_oid[r.get(i, 0)] = tables.size();
    tables.push_back(std::move(t));
  }
  if (!with_columns || tables.empty()) return tables;

  PgResult cols = conn.exec(std::string(R"SQL(
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND )SQL") +
                            kUserSchemaFilter + R"SQL(
ORDER BY a.attrelid, a.attnum)SQL");
  if (!cols) {
    error = cols.error();
    return std::nullopt;
  }
  for (int i = 0; i < cols.rows(); ++i) {
    auto it = by_oid.find(cols.get(i, 0));
    if (it == by_oid.end()) continue;
    tables[it->second].columns.push_back({cols.get(i, 1), cols.get(i, 2), cols.get_bool(i, 3)});
  }
  // Primary key columns in key order (unnest WITH ORDINALITY keeps conkey's order).
  PgResult pk = conn.exec(std::string(R"SQL(
SELECT k.conrelid, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
WHERE k.contype = 'p' AND )SQL") +
                          kUserSchemaFilter + R"SQL(
ORDER BY k.conrelid, u.ord)SQL");
  if (!pk) {
    error = pk.error();
    return std::nullopt;
  }
  for (int i = 0; i < pk.rows(); ++i) {
    auto it = by_oid.find(pk.get(i, 0));
    if (it == by_oid.end()) continue;
    tables[it->second].primary_key.push_back(pk.get(i, 1));
    tables[it->second].primary_key_types.push_back(pk.get(i, 2));
  }
  return tables;
}

}  // namespace pgcutover::control
