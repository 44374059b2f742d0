// pgcutoverctl against real replication: the logical method takes a pgbench database to
// streaming with progress, validate passes and then catches a row changed only on the target;
// the external method measures heartbeat lag of a replication it did not set up.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/ctl_runner.h"
#include "tests/lib/pg_cluster.h"

namespace pgcutover::testing {
namespace {

namespace json = boost::json;

using std::chrono::seconds;

// The ends as pgcutoverctl sees them: the app roles over TLS.
std::vector<std::string> ends(const PgCluster& source, const PgCluster& target) {
  return {"--source-url", source.app_url(), "--target-url", target.app_url()};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Scale 5 (500,000 accounts, ~75 MB): large enough for a copy with progress and a key range to
// narrow; the suite's copy and validation of scale 20 took 45 s of a core, most of it in
// PostgreSQL. docs/cli.md's copy and validate figures are measured at scale 20 with
// PGCUTOVER_CTL_PGBENCH_SCALE=20.
int pgbench_scale() {
  if (const char* s = std::getenv("PGCUTOVER_CTL_PGBENCH_SCALE")) return std::atoi(s);
  return 5;
}

// pgbench -i -s 5 (500,000 accounts), schema copy, replicate start --method logical to
// streaming with per-table progress, validate passes; a row changed only on the target makes
// validate fail naming the table and the key range; replicate stop cleans up both sides.
TEST(control_replication, LogicalReachesStreamingValidatesAndFindsATargetOnlyChange) {
  auto source = PgCluster::start(Shape::kHeroku, "source", logical_source_options());
  auto target = PgCluster::start(Shape::kRds, "target");
  int scale = pgbench_scale();
  auto init = control::run_client_tool(
      {"pgbench", "-i", "-q", "-s", std::to_string(scale), source->app_url()}, control::ConnSpec{});
  ASSERT_EQ(init.exit_code, 0) << init.errors;
  std::cerr << "pgbench -i -s " << scale << ": " << init.seconds << " s\n";
  // What an RDS administrator does once: pg_stat_statements is not a trusted extension.
  target->query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");

  CtlRun copy = ctl(with({"schema", "copy"}, ends(*source, *target)));
  ASSERT_EQ(copy.exit_code, 0) << copy.out << copy.err;
  CtlRun again = ctl(with({"schema", "copy"}, ends(*source, *target)));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already equal"), std::string::npos) << again.out;
  EXPECT_EQ(ctl(with({"schema", "diff"}, ends(*source, *target))).exit_code, 0);

  // CREATE SUBSCRIPTION needs superuser on PostgreSQL 15 (rds_superuser on RDS).
  CtlRun start = ctl(with({"replicate", "start", "--method", "logical", "--wait-timeout", "300",
                           "--subscriber-url", target->admin_conninfo()},
                          ends(*source, *target)));
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  std::cerr << "replicate start (initial copy, scale " << scale << "): " << start.seconds << " s\n";
  EXPECT_NE(start.out.find("pgbench_accounts: copying"), std::string::npos) << start.out;
  EXPECT_NE(start.out.find("all 4 tables streaming"), std::string::npos) << start.out;
  EXPECT_NE(start.out.find("insert-only"), std::string::npos);  // pgbench_history has no key

  CtlRun status = ctl(with({"replicate", "status", "--json"}, ends(*source, *target)));
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  auto st = parse_object(status.out);
  EXPECT_EQ(st["tables_streaming"].as_int64(), 4) << status.out;

  // Writes on the source arrive: lag reading with bytes and seconds.
  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  app.exec("UPDATE pgbench_branches SET bbalance = bbalance + 7 WHERE bid = 1");
  CtlRun lag = ctl(with({"lag", "--json"}, ends(*source, *target)));
  EXPECT_EQ(lag.exit_code, 0) << lag.out << lag.err;
  auto l = parse_object(lag.out);
  EXPECT_TRUE(l["bytes"].is_int64()) << lag.out;
  EXPECT_FALSE(l["seconds"].is_null()) << lag.out;

  CtlRun valid = ctl(with({"validate", "--jobs", "2"}, ends(*source, *target)));
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  EXPECT_NE(valid.out.find("validate: OK"), std::string::npos) << valid.out;
  EXPECT_NE(valid.out.find("MB/s"), std::string::npos);
  std::cerr << "validate (scale " << scale << ", 2 jobs): " << valid.seconds << " s\n";

  // A row changed only on the target: validate fails and names table and key range.
  target->query("UPDATE pgbench_accounts SET filler = 'changed on the target' WHERE aid = 123457");
  CtlRun bad =
      ctl(with({"validate", "--json", "--jobs", "2", "--retries", "1"}, ends(*source, *target)));
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  auto report = parse_object(bad.out);
  ASSERT_FALSE(report.empty()) << bad.out;
  bool named = false;
  for (const auto& t : report["table_results"].as_array()) {
    const auto& o = t.as_object();
    if (o.at("table").as_string() != "public.pgbench_accounts") {
      EXPECT_EQ(o.at("status").as_string(), "ok") << json::serialize(o);
      continue;
    }
    EXPECT_EQ(o.at("status").as_string(), "mismatch");
    for (const auto& m : o.at("mismatches").as_array()) {
      const auto& mo = m.as_object();
      int64_t lo = std::stoll(std::string(mo.at("lower").as_array().at(0).as_string()));
      int64_t hi = std::stoll(std::string(mo.at("upper").as_array().at(0).as_string()));
      EXPECT_LE(lo, 123457);
      EXPECT_GT(hi, 123457);
      EXPECT_LE(hi - lo, 64) << "narrowed to a small range";
      bool key_named = false;
      for (const auto& k : mo.at("keys").as_array())
        key_named |= k.as_string() == "(123457) differs";
      EXPECT_TRUE(key_named) << json::serialize(mo);
      named = true;
    }
  }
  EXPECT_TRUE(named) << bad.out;
  // Human output too.
  CtlRun bad_human = ctl(with({"validate", "--table", "public.pgbench_accounts", "--retries", "1"},
                              ends(*source, *target)));
  EXPECT_EQ(bad_human.exit_code, 1);
  EXPECT_NE(bad_human.out.find("MISMATCH aid >= "), std::string::npos) << bad_human.out;

  CtlRun stop = ctl(with({"replicate", "stop", "--subscriber-url", target->admin_conninfo()},
                         ends(*source, *target)));
  EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  EXPECT_EQ(source->query("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(source->query("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(target->query("SELECT count(*) FROM pg_subscription"), "0");
}

// The Heroku-shaped source cannot do native logical replication: replicate start says so
// and names the methods that work, instead of failing half-way.
TEST(control_replication, LogicalRefusedOnHerokuSourceWithTheAlternative) {
  auto source = PgCluster::start(Shape::kHeroku, "source");
  auto target = PgCluster::start(Shape::kRds, "target");
  CtlRun r = ctl(with(
      {"replicate", "start", "--method", "logical", "--subscriber-url", target->admin_conninfo()},
      ends(*source, *target)));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not possible"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--method trigger"), std::string::npos) << r.err;
  EXPECT_EQ(source->query("SELECT count(*) FROM pg_publication"), "0");
}

// A replication pgcutover did not start (a hand-made publication and subscription, standing
// in for AWS DMS): `replicate start --method external` adds the heartbeat, the operator adds
// it to their replication as documented, and lag is measured from its arrival.
TEST(control_replication, ExternalMethodMeasuresHeartbeatLagOfForeignReplication) {
  auto source = PgCluster::start(Shape::kHeroku, "source", logical_source_options());
  auto target = PgCluster::start(Shape::kRds, "target");
  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  app.exec("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric)");
  app.exec("INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g");
  target->query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  ASSERT_EQ(ctl(with({"schema", "copy"}, ends(*source, *target))).exit_code, 0);

  // The foreign replication, set up by hand.
  app.exec("CREATE PUBLICATION foreign_pub FOR TABLE orders");
  std::string conninfo_literal;
  for (char c : source->app_conninfo())
    conninfo_literal += c == '\'' ? std::string("''") : std::string(1, c);
  target->query("CREATE SUBSCRIPTION foreign_sub CONNECTION '" + conninfo_literal +
                "' PUBLICATION foreign_pub");
  ASSERT_TRUE(eventually([&] { return target->query("SELECT count(*) FROM orders") == "1000"; },
                         seconds(60)));

  CtlRun start = ctl(
      with({"replicate", "start", "--method", "external", "--no-wait"}, ends(*source, *target)));
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  EXPECT_NE(start.out.find("ADD TABLE pgcutover.heartbeat"), std::string::npos) << start.out;

  // Before the operator includes the heartbeat, the lag cannot be measured: said, exit 1.
  CtlRun missing = ctl(with({"replicate", "status"}, ends(*source, *target)));
  EXPECT_EQ(missing.exit_code, 1) << missing.out;

  // What the documentation tells the operator to do with their own replication.
  app.exec("ALTER PUBLICATION foreign_pub ADD TABLE pgcutover.heartbeat");
  target->query("ALTER SUBSCRIPTION foreign_sub REFRESH PUBLICATION");

  json::object reading;
  ASSERT_TRUE(eventually(
      [&] {
        CtlRun lag = ctl(with({"lag", "--json"}, ends(*source, *target)));
        reading = parse_object(lag.out);
        return lag.exit_code == 0;
      },
      seconds(60), std::chrono::milliseconds(500)))
      << json::serialize(reading);
  EXPECT_EQ(reading["method"].as_string(), "external");
  EXPECT_EQ(reading["seconds_from"].as_string(), "heartbeat");
  double secs = reading["seconds"].to_number<double>();
  EXPECT_GT(secs, 0.0);
  EXPECT_LT(secs, 30.0);
  std::cerr << "external heartbeat lag: " << secs << " s\n";
  // pgcutover created no replication of its own.
  EXPECT_EQ(target->query("SELECT string_agg(subname, ',') FROM pg_subscription"), "foreign_sub");
  EXPECT_EQ(
      source->query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgcutover'"),
      "0");
  // And validate compares through the foreign replication.
  CtlRun valid = ctl(with({"validate"}, ends(*source, *target)));
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
}

}  // namespace
}  // namespace pgcutover::testing
