// What the control plane needs to know about a database's user tables, read from the
// catalogs once and shared by preflight, replication and validation. "User" means: not in
// pg_catalog, information_schema, pg_toast or our own pgcutover schema, and not a member of
// an extension (those come with CREATE EXTENSION, never with the data).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

// SQL fragment: namespaces that are never the application's. `n` is pg_namespace.
inline constexpr const char* kUserSchemaFilter =
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgcutover') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

struct ColumnInfo {
  std::string name;
  std::string type;  // format_type()
  bool generated = false;
};

struct TableInfo {
  std::string schema;
  std::string name;
  char kind = 'r';              // 'r' table, 'p' partitioned
  bool unlogged = false;        // relpersistence = 'u'
  char replica_identity = 'd';  // d default (PK), n nothing, f full, i index
  bool has_primary_key = false;
  bool has_identity_index = false;
  bool owned_by_current_user = false;  // or a role it is a member of
  std::string owner;
  int64_t estimated_rows = 0;            // reltuples (-1 when never analyzed becomes 0)
  int64_t total_bytes = 0;               // pg_total_relation_size
  int64_t updates_and_deletes = 0;       // since stats reset: tells an insert-only table
  std::vector<std::string> primary_key;  // column names in key order
  std::vector<std::string> primary_key_types;
  std::vector<ColumnInfo> columns;  // in attnum order, dropped columns excluded

  std::string qualified() const;  // "schema"."name", quoted
  std::string display() const { return schema + "." + name; }
  // UPDATE/DELETE can be replicated logically (and are not refused once published).
  bool has_replica_identity() const {
    return replica_identity == 'f' || (replica_identity == 'i' && has_identity_index) ||
           (replica_identity == 'd' && has_primary_key);
  }
};

// All user tables (partitions are reached through their parent), sorted by schema, name.
// With `with_columns`, also columns and primary keys (one more query per database, not per
// table).
std::optional<std::vector<TableInfo>> list_user_tables(PgConn& conn, bool with_columns,
                                                       PgError& error);

}  // namespace pgcutover::control
