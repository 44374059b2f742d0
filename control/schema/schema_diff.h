// schema diff: the user schema of a database as a map "kind name" -> canonical definition,
// read from the catalogs (pg_get_indexdef, pg_get_constraintdef, format_type, ...), and the
// comparison of two such maps. Used by `schema diff`, and by `schema copy` to stay
// idempotent.
#pragma once

#include <boost/json.hpp>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct SchemaSnapshot {
  // "table public.accounts" -> "kind=r persistence=p", "column public.accounts.id" ->
  // "integer not null default nextval(...)", "index ...", "constraint ...", "sequence ...",
  // "view ...", "extension citext" -> "schema public".
  std::map<std::string, std::string> objects;
  int relations = 0;  // tables + views + sequences: 0 means an empty target
};

struct SchemaDifference {
  std::string object;  // "column public.accounts.balance"
  std::string source;  // definition on the source ("" when missing there)
  std::string target;  // definition on the target ("" when missing there)
};

std::optional<SchemaSnapshot> read_schema(PgConn& conn, PgError& error);
std::vector<SchemaDifference> diff_schemas(const SchemaSnapshot& source,
                                           const SchemaSnapshot& target);

// Human listing ("only on source: ...", "differs: ..."), at most `limit` lines.
void print_differences(std::ostream& os, const std::vector<SchemaDifference>& diffs, size_t limit);
boost::json::array differences_json(const std::vector<SchemaDifference>& diffs);

}  // namespace pgcutover::control
