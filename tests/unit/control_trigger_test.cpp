// The trigger method's generated SQL (control/trigger_sql.*): composite keys log every key
// column and both keys on a key-changing UPDATE, odd identifiers are quoted everywhere, the
// function body's dollar quote cannot be ended by a column name, and the text[] parameters
// round-trip any value.
#include <gtest/gtest.h>

#include "control/replication/trigger_sql.h"

namespace pgcutover::control {
namespace {

CapturedTable composite() {
  CapturedTable t;
  t.id = 7;
  t.schema = "public";
  t.name = "order_lines";
  t.key = {"order_id", "line"};
  t.key_types = {"bigint", "integer"};
  t.columns = {"order_id", "line", "sku", "qty"};
  t.column_types = {"bigint", "integer", "text", "integer"};
  return t;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(TriggerSql, CompositeKeyLogsEveryKeyColumnAndBothKeysOnKeyChange) {
  std::string ddl = capture_ddl(composite());
  // The table's own log, key columns typed like the key: no text conversion, no array, and
  // no index or sequence to maintain on the write path.
  EXPECT_NE(ddl.find("CREATE TABLE IF NOT EXISTS pgcutover.\"trigger_changes_7\" (k1 bigint, k2 "
                     "integer, at timestamptz NOT "
                     "NULL DEFAULT now());"),
            std::string::npos);
  EXPECT_EQ(ddl.find("PRIMARY KEY"), std::string::npos);
  EXPECT_EQ(ddl.find("nextval"), std::string::npos);
  EXPECT_EQ(ddl.find("::text"), std::string::npos);
  // NEW on INSERT/UPDATE, OLD on DELETE and on an UPDATE that changes the key (WHEN clause:
  // no plpgsql call, no IF, for the common UPDATE). Every trigger skips pgcutover's own apply
  // sessions (the loop guard the way back needs), in the WHEN clause too.
  const std::string guard = "current_setting('pgcutover.applying', true) IS DISTINCT FROM 'on'";
  EXPECT_NE(ddl.find("AFTER INSERT OR UPDATE ON \"public\".\"order_lines\" FOR EACH ROW "
                     "WHEN (" +
                     guard + ") EXECUTE FUNCTION pgcutover.\"capture_7\"()"),
            std::string::npos);
  EXPECT_NE(ddl.find("AFTER DELETE ON \"public\".\"order_lines\" FOR EACH ROW WHEN (" + guard +
                     ") EXECUTE FUNCTION pgcutover.\"capture_old_7\"()"),
            std::string::npos);
  EXPECT_NE(ddl.find("AFTER UPDATE ON \"public\".\"order_lines\" FOR EACH ROW WHEN "
                     "((OLD.\"order_id\", OLD.\"line\") IS DISTINCT FROM (NEW.\"order_id\", "
                     "NEW.\"line\") AND " +
                     guard + ") EXECUTE FUNCTION pgcutover.\"capture_old_7\"()"),
            std::string::npos);
  EXPECT_EQ(count(ddl, "WHEN (" + guard + ")"), 3u);  // capture, capture_old, TRUNCATE guard
  EXPECT_EQ(ddl.find("IF TG_OP"), std::string::npos);
  EXPECT_EQ(ddl.find(" THEN "), std::string::npos);
  // Static SQL only: no EXECUTE of a built string, no jsonb in the write path.
  EXPECT_EQ(ddl.find("EXECUTE '"), std::string::npos);
  EXPECT_EQ(ddl.find("EXECUTE format"), std::string::npos);
  EXPECT_EQ(ddl.find("jsonb"), std::string::npos);
  // Two log inserts: one function for NEW, one for OLD.
  EXPECT_EQ(count(ddl, "INSERT INTO pgcutover.\"trigger_changes_7\" (k1, k2) VALUES ("), 2u);
  EXPECT_NE(ddl.find("VALUES (NEW.\"order_id\", NEW.\"line\");"), std::string::npos);
  EXPECT_NE(ddl.find("AFTER TRUNCATE ON"), std::string::npos);
}

TEST(TriggerSql, OddIdentifiersAreQuotedAndCannotCloseTheDollarQuote) {
  CapturedTable t;
  t.id = 3;
  t.schema = "My \"Schema\"";
  t.name = "tbl; DROP TABLE x";
  t.key = {"$pgcutover$", "Mixed Case"};
  t.key_types = {"text", "integer"};
  t.columns = t.key;
  t.column_types = t.key_types;
  std::string ddl = capture_ddl(t);
  EXPECT_NE(ddl.find("\"My \"\"Schema\"\"\".\"tbl; DROP TABLE x\""), std::string::npos);
  EXPECT_NE(ddl.find("(NEW.\"$pgcutover$\", NEW.\"Mixed Case\")"), std::string::npos);
  // The body contains "$pgcutover$", so another tag is used for the function body.
  EXPECT_NE(ddl.find("AS $pgcutover1$BEGIN INSERT"), std::string::npos);
  EXPECT_EQ(count(ddl, "$pgcutover1$"), 4u);  // both functions' bodies
  // Every column is a key column: the upsert has nothing to update.
  EXPECT_NE(upsert_rows_sql(t).find("ON CONFLICT (\"$pgcutover$\", \"Mixed Case\") DO NOTHING"),
            std::string::npos);
}

TEST(TriggerSql, ApplyStatementsCastTextArraysToTheKeyTypes) {
  CapturedTable t = composite();
  EXPECT_EQ(select_rows_sql(t),
            "SELECT t.\"order_id\"::text, t.\"line\"::text, t.\"order_id\"::text, "
            "t.\"line\"::text, t.\"sku\"::text, t.\"qty\"::text FROM unnest($1::text[], "
            "$2::text[]) AS u(v1, v2) JOIN \"public\".\"order_lines\" t ON t.\"order_id\" = "
            "u.v1::bigint AND t.\"line\" = u.v2::integer");
  EXPECT_EQ(delete_rows_sql(t),
            "DELETE FROM \"public\".\"order_lines\" t USING unnest($1::text[], $2::text[]) AS "
            "u(v1, v2) WHERE t.\"order_id\" = u.v1::bigint AND t.\"line\" = u.v2::integer");
  std::string up = upsert_rows_sql(t);
  EXPECT_NE(up.find("INSERT INTO \"public\".\"order_lines\" (\"order_id\", \"line\", \"sku\", "
                    "\"qty\") SELECT u.v1::bigint, u.v2::integer, u.v3::text, u.v4::integer"),
            std::string::npos);
  EXPECT_NE(up.find("ON CONFLICT (\"order_id\", \"line\") DO UPDATE SET \"sku\" = "
                    "EXCLUDED.\"sku\", \"qty\" = EXCLUDED.\"qty\""),
            std::string::npos);
  // The log is read whole (no ORDER BY, no index needed) and entries deleted by ctid.
  EXPECT_EQ(
      select_log_sql(t),
      "SELECT ctid::text, xmin::text, k1::text, k2::text FROM pgcutover.\"trigger_changes_7\" "
      "LIMIT $1::int");
  EXPECT_EQ(delete_log_sql(t),
            "DELETE FROM pgcutover.\"trigger_changes_7\" WHERE ctid = ANY($1::tid[])");
  CapturedTable h;
  h.id = 4;
  // An apply round's deletes: every log in one statement, each log's ctids in its own parameter.
  EXPECT_EQ(
      delete_logs_sql({&t, &h}),
      "WITH d1 AS (DELETE FROM pgcutover.\"trigger_changes_7\" WHERE ctid = ANY($1::tid[])), "
      "d2 AS (DELETE FROM pgcutover.\"trigger_rows_4\" WHERE ctid = ANY($2::tid[])) SELECT 2");
  EXPECT_EQ(nonempty_logs_sql({t, h}),
            "SELECT 0 WHERE false UNION ALL SELECT 7 WHERE EXISTS (SELECT FROM "
            "pgcutover.\"trigger_changes_7\") UNION ALL SELECT 4 WHERE EXISTS (SELECT FROM "
            "pgcutover.\"trigger_rows_4\")");
  // Removal names functions (CASCADE takes the triggers) and logs, never the captured table.
  std::string drop = drop_capture_ddl(t);
  EXPECT_EQ(drop.find("order_lines"), std::string::npos);
  EXPECT_NE(drop.find("DROP FUNCTION IF EXISTS pgcutover.\"capture_7\"() CASCADE;"),
            std::string::npos);
}

TEST(TriggerSql, InsertOnlyTableLogsWholeRowsAndGuardsUpdates) {
  CapturedTable t;
  t.id = 4;
  t.schema = "public";
  t.name = "pgbench_history";
  t.columns = {"tid", "delta"};
  t.column_types = {"integer", "integer"};
  std::string ddl = capture_ddl(t);
  EXPECT_NE(ddl.find("CREATE TABLE IF NOT EXISTS pgcutover.\"trigger_rows_4\""), std::string::npos);
  EXPECT_NE(ddl.find("INSERT INTO pgcutover.\"trigger_rows_4\" (r) VALUES (NEW)"),
            std::string::npos);
  EXPECT_NE(ddl.find("AFTER INSERT ON \"public\".\"pgbench_history\" FOR EACH ROW"),
            std::string::npos);
  EXPECT_NE(ddl.find("AFTER UPDATE OR DELETE OR TRUNCATE ON \"public\".\"pgbench_history\" FOR "
                     "EACH STATEMENT"),
            std::string::npos);
  EXPECT_EQ(ddl.find("nextval"), std::string::npos);
  EXPECT_EQ(select_log_sql(t),
            "SELECT ctid::text, xmin::text, (r).\"tid\"::text, (r).\"delta\"::text FROM "
            "pgcutover.\"trigger_rows_4\" LIMIT $1::int");
}

TEST(TriggerSql, TextArraysRoundTrip) {
  std::vector<std::optional<std::string>> v = {
      "plain", "", "NULL", std::nullopt, "a,b", "{x}", "quote\"d", "back\\slash", " sp "};
  std::string lit = text_array_literal(v);
  EXPECT_EQ(lit,
            "{\"plain\",\"\",\"NULL\",NULL,\"a,b\",\"{x}\",\"quote\\\"d\",\"back\\\\slash\","
            "\" sp \"}");
  auto back = parse_text_array(lit);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
  // array_out's own form: unquoted where it can be.
  auto out = parse_text_array("{1,abc,NULL,\"x y\"}");
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 4u);
  EXPECT_EQ((*out)[1], "abc");
  EXPECT_FALSE((*out)[2]);
  EXPECT_EQ((*out)[3], "x y");
  EXPECT_TRUE(parse_text_array("{}")->empty());
  EXPECT_FALSE(parse_text_array("{\"open"));
  EXPECT_FALSE(parse_text_array("nope"));
}

}  // namespace
}  // namespace pgcutover::control
