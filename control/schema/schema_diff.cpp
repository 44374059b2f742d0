#include "control/schema/schema_diff.h"

#include <ostream>

#include "control/command/exit_codes.h"
#include "control/db/catalog.h"
#include "control/schema/schema.h"

namespace pgcutover::control {
namespace {

// Objects that belong to an extension are created by CREATE EXTENSION, not by the schema.
const char* kNotExtensionMember =
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e')";

struct CatalogQuery {
  const char* kind;
  std::string sql;  // returns (name, definition)
};

std::vector<CatalogQuery> catalog_queries() {
  std::string user = kUserSchemaFilter;
  std::string rel = " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + user +
                    kNotExtensionMember;
  return {
      {"table",
       "SELECT n.nspname || '.' || c.relname, 'kind=' || c.relkind::text || ' persistence=' || "
       "c.relpersistence::text || coalesce(' partition of ' || (SELECT pn.nspname || '.' || "
       "p.relname "
       "FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON "
       "pn.oid = p.relnamespace WHERE i.inhrelid = c.oid LIMIT 1), '')" +
           rel + " AND c.relkind IN ('r', 'p', 'f')"},
      {"column",
       "SELECT n.nspname || '.' || c.relname || '.' || a.attname, "
       "format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' "
       "END || coalesce(CASE WHEN a.attgenerated <> '' THEN ' generated always as ' ELSE ' "
       "default ' END || pg_get_expr(ad.adbin, ad.adrelid), '') || CASE a.attidentity WHEN 'a' "
       "THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END || CASE WHEN "
       "a.attcollation <> 0 AND a.attcollation <> (SELECT oid FROM pg_collation WHERE collname = "
       "'default' AND collnamespace = 'pg_catalog'::regnamespace) THEN ' collate ' || "
       "(SELECT collname FROM pg_collation WHERE oid = a.attcollation) ELSE '' END "
       "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid "
       "= c.relnamespace LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = "
       "a.attnum WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', "
       "'v', 'm') AND " +
           user + kNotExtensionMember},
      {"index", "SELECT n.nspname || '.' || c.relname, pg_get_indexdef(c.oid)" + rel +
                    " AND c.relkind IN ('i', 'I')"},
      {"constraint",
       "SELECT n.nspname || '.' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) "
       "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON "
       "n.oid = c.relnamespace WHERE " +
           user + kNotExtensionMember},
      {"sequence",
       "SELECT n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL) || ' start ' || "
       "s.seqstart || ' increment ' || s.seqincrement || ' min ' || s.seqmin || ' max ' || "
       "s.seqmax || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END "
       "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid "
       "= c.relnamespace WHERE " +
           user + kNotExtensionMember},
      {"view",
       "SELECT n.nspname || '.' || c.relname, c.relkind::text || ': ' || pg_get_viewdef(c.oid)" +
           rel + " AND c.relkind IN ('v', 'm')"},
      {"extension",
       "SELECT e.extname, 'schema ' || n.nspname FROM pg_extension e JOIN pg_namespace n ON "
       "n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"},
  };
}

}  // namespace

std::optional<SchemaSnapshot> read_schema(PgConn& conn, PgError& error) {
  SchemaSnapshot snap;
  for (const auto& q : catalog_queries()) {
    PgResult r = conn.exec(q.sql);
    if (!r) {
      error = r.error();
      return std::nullopt;
    }
    for (int i = 0; i < r.rows(); ++i)
      snap.objects[std::string(q.kind) + " " + r.get(i, 0)] = r.get(i, 1);
    std::string k = q.kind;
    if (k == "table" || k == "sequence" || k == "view") snap.relations += r.rows();
  }
  return snap;
}

std::vector<SchemaDifference> diff_schemas(const SchemaSnapshot& source,
                                           const SchemaSnapshot& target) {
  std::vector<SchemaDifference> out;
  auto s = source.objects.begin(), t = target.objects.begin();
  while (s != source.objects.end() || t != target.objects.end()) {
    if (t == target.objects.end() || (s != source.objects.end() && s->first < t->first)) {
      out.push_back({s->first, s->second, ""});
      ++s;
    } else if (s == source.objects.end() || t->first < s->first) {
      out.push_back({t->first, "", t->second});
      ++t;
    } else {
      if (s->second != t->second) out.push_back({s->first, s->second, t->second});
      ++s;
      ++t;
    }
  }
  return out;
}

void print_differences(std::ostream& os, const std::vector<SchemaDifference>& diffs, size_t limit) {
  size_t n = 0;
  for (const auto& d : diffs) {
    if (n++ == limit) {
      os << "  ... and " << diffs.size() - limit << " more (--json lists all)\n";
      break;
    }
    if (d.target.empty()) {
      os << "  only on source: " << d.object << "  (" << d.source << ")\n";
    } else if (d.source.empty()) {
      os << "  only on target: " << d.object << "  (" << d.target << ")\n";
    } else {
      os << "  differs:        " << d.object << "\n      source: " << d.source
         << "\n      target: " << d.target << "\n";
    }
  }
}

boost::json::array differences_json(const std::vector<SchemaDifference>& diffs) {
  boost::json::array a;
  for (const auto& d : diffs)
    a.push_back(boost::json::object{
        {"object", d.object},
        {"source", d.source.empty() ? boost::json::value(nullptr) : boost::json::value(d.source)},
        {"target", d.target.empty() ? boost::json::value(nullptr) : boost::json::value(d.target)}});
  return a;
}

int cmd_schema_diff(CommandContext& ctx) {
  auto source = ctx.connect_source();
  if (!source) return kExitUsage;
  auto target = ctx.connect_target();
  if (!target) return kExitUsage;
  PgError e;
  auto s = read_schema(*source, e);
  if (!s) return ctx.fail(kExitUsage, "reading the source's catalogs: " + e.message);
  auto t = read_schema(*target, e);
  if (!t) return ctx.fail(kExitUsage, "reading the target's catalogs: " + e.message);
  auto diffs = diff_schemas(*s, *t);
  int rc = diffs.empty() ? kExitOk : kExitCheckFailed;
  if (ctx.json) {
    ctx.print_json(boost::json::object{{"ok", diffs.empty()},
                                       {"source_objects", s->objects.size()},
                                       {"target_objects", t->objects.size()},
                                       {"differences", differences_json(diffs)}});
    return rc;
  }
  if (diffs.empty()) {
    *ctx.out << "schemas equal: " << s->objects.size()
             << " objects (tables, columns, indexes, constraints, sequences, views, "
                "extensions)\n";
    return rc;
  }
  *ctx.out << diffs.size() << " difference(s) between source and target:\n";
  print_differences(*ctx.out, diffs, 200);
  if (t->relations == 0)
    *ctx.out << "the target has no user tables: run `pgcutoverctl schema copy`\n";
  return rc;
}

}  // namespace pgcutover::control
