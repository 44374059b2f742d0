// The test harness itself: the clusters every other integration test relies on really have the
// shapes they claim (what Heroku and RDS refuse, they refuse too), and they leave nothing behind.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/lib/pg_cluster.h"

namespace pgcutover::testing {
namespace {

using std::chrono::seconds;

// Suite `harness` in lower case so that `ctest -R harness` selects these together with
// integration.test_harness (the shell helper's test).

// Heroku refuses plaintext TCP: the pg_hba reject line answers before any password is asked.
TEST(harness, HerokuSourceRefusesPlaintextAndAcceptsTls) {
  auto source = PgCluster::start(Shape::kHeroku, "source");

  PgConn plain = PgConn::connect(source->app_conninfo("sslmode=disable"));
  EXPECT_FALSE(plain.ok());
  EXPECT_NE(plain.error().find("no encryption"), std::string::npos) << plain.error();

  PgConn tls = PgConn::connect(source->app_conninfo());  // sslmode=require, as Heroku's URL
  ASSERT_TRUE(tls.ok()) << tls.error();
  EXPECT_EQ(tls.value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
  EXPECT_EQ(tls.value("SELECT current_user"), "app");

  // The URL form works as well (what DATABASE_URL holds).
  PgConn by_url = PgConn::connect(source->app_url());
  EXPECT_TRUE(by_url.ok()) << by_url.error();
}

// The app role owns its database but has neither superuser nor REPLICATION: why native logical
// replication cannot start from classic Heroku Postgres.
TEST(harness, HerokuAppRoleOwnsDatabaseWithoutSuperuserOrReplication) {
  auto source = PgCluster::start(Shape::kHeroku, "source");
  EXPECT_EQ(source->query("SELECT rolsuper, rolreplication, rolcreaterole, rolcreatedb "
                          "FROM pg_roles WHERE rolname = 'app'"),
            "f|f|f|f");
  EXPECT_EQ(source->query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
            "app");
  EXPECT_EQ(source->query("SHOW wal_level"), "replica");

  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  EXPECT_THROW(app.exec("SELECT pg_create_logical_replication_slot('s', 'pgoutput')"),
               std::runtime_error);
}

TEST(harness, HerokuSourceHasCitextHstoreAndPgStatStatements) {
  auto source = PgCluster::start(Shape::kHeroku, "source");
  EXPECT_EQ(source->query("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension "
                          "WHERE extname <> 'plpgsql'"),
            "citext,hstore,pg_stat_statements");
  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  // pg_stat_statements is usable only when preloaded, as on Heroku.
  EXPECT_NO_THROW(app.exec("SELECT count(*) FROM pg_stat_statements"));
  EXPECT_EQ(app.value("SELECT 'Abc'::citext = 'aBC'::citext"), "t");
}

// The RDS target is verifiable with sslmode=verify-full against its own CA, and only that CA.
TEST(harness, RdsTargetVerifiesFullWithItsCaOnly) {
  auto target = PgCluster::start(Shape::kRds, "target");

  PgConn good = PgConn::connect(target->app_conninfo());
  ASSERT_TRUE(good.ok()) << good.error();
  PgConn by_url = PgConn::connect(target->app_url());
  EXPECT_TRUE(by_url.ok()) << by_url.error();
  // The certificate names localhost too, not only 127.0.0.1.
  PgConn by_name = PgConn::connect(target->app_conninfo("host=localhost hostaddr=127.0.0.1"));
  EXPECT_TRUE(by_name.ok()) << by_name.error();

  TempDir other("pgcutover-wrong-ca");
  TlsFiles wrong = make_tls(other.path(), "wrong");
  PgConn bad = PgConn::connect(target->app_conninfo("sslrootcert=" + wrong.ca_file));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("certificate verify failed"), std::string::npos) << bad.error();

  PgConn plain = PgConn::connect(target->app_conninfo("sslmode=disable"));
  EXPECT_FALSE(plain.ok());
  EXPECT_NE(plain.error().find("no encryption"), std::string::npos) << plain.error();
}

TEST(harness, RdsTargetHasLogicalWalLevelAndMasterLikeAppRole) {
  auto target = PgCluster::start(Shape::kRds, "target");
  EXPECT_EQ(target->query("SHOW wal_level"), "logical");
  EXPECT_EQ(target->query("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                          "WHERE rolname = 'app'"),
            "f|t|t");
  EXPECT_EQ(target->query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
            "app");
  // Target starts empty: the schema copy creates extensions and tables.
  EXPECT_EQ(target->query("SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'"), "0");
}

// --logical: a source the logical method can use, end to end. The subscription is created with
// the target's admin connection because CREATE SUBSCRIPTION needs superuser on PostgreSQL 15.
TEST(harness, LogicalSourceReplicatesToRdsTarget) {
  ClusterOptions logical;
  logical.logical = true;
  auto source = PgCluster::start(Shape::kHeroku, "source", logical);
  auto target = PgCluster::start(Shape::kRds, "target");
  EXPECT_EQ(source->query("SELECT rolreplication FROM pg_roles WHERE rolname = 'app'"), "t");
  EXPECT_EQ(source->query("SHOW wal_level"), "logical");

  PgConn app = PgConn::connect(source->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  app.exec(
      "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');"
      "CREATE PUBLICATION pub FOR TABLE t");
  target->query("CREATE TABLE t (id int PRIMARY KEY, v text)");
  std::string from_target =
      source->app_conninfo("sslmode=verify-full sslrootcert=" + source->ca_file());
  target->query("CREATE SUBSCRIPTION sub CONNECTION " + sql_literal(from_target) +
                " PUBLICATION pub");
  app.exec("INSERT INTO t VALUES (3, 'c')");
  EXPECT_TRUE(
      eventually([&] { return target->query("SELECT count(*) FROM t") == "3"; }, seconds(60)))
      << target->query("SELECT count(*) FROM t");
  target->query("DROP SUBSCRIPTION sub");
}

// CTest runs tests in parallel: clusters share no port and no directory.
TEST(harness, TwoClustersRunAtOnceOnDifferentPorts) {
  auto source = PgCluster::start(Shape::kHeroku, "source");
  auto target = PgCluster::start(Shape::kRds, "target");
  EXPECT_NE(source->port(), target->port());
  EXPECT_NE(source->dir(), target->dir());
  EXPECT_NE(source->app_password(), target->app_password());
  PgConn a = PgConn::connect(source->app_conninfo());
  PgConn b = PgConn::connect(target->app_conninfo());
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_NE(a.value("SELECT system_identifier FROM pg_control_system()"),
            b.value("SELECT system_identifier FROM pg_control_system()"));
  // Each CA verifies its own server only.
  PgConn crossed = PgConn::connect(target->app_conninfo("sslrootcert=" + source->ca_file()));
  EXPECT_FALSE(crossed.ok());
}

// Destroying the fixture stops the server and deletes its directory: nothing outlives a test.
TEST(harness, ClusterIsGoneAfterFixtureIsDestroyed) {
  auto cluster = PgCluster::start(Shape::kPlain, "plain");
  int port = cluster->port();
  std::string dir = cluster->dir();
  pid_t postmaster = std::stoi(cluster->record("pid"));
  PgConn conn = PgConn::connect(cluster->app_conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  ASSERT_TRUE(port_is_open(port));

  cluster.reset();
  EXPECT_FALSE(port_is_open(port));
  EXPECT_FALSE(std::filesystem::exists(dir));
  // pg_ctl returns once postmaster.pid is gone, a moment before the process has exited and
  // been reaped; a zombie counts as gone.
  EXPECT_TRUE(eventually([&] { return !process_is_running(postmaster); }, seconds(10)));
}

// A test process that dies without running destructors (crash, CTest's timeout kill) leaks
// nothing either: the script's watchdog notices the owner is gone.
TEST(harness, ClusterOfADeadTestProcessIsRemovedByTheWatchdog) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    std::string line;
    try {
      auto cluster = PgCluster::start(Shape::kPlain, "orphan");
      line = cluster->dir() + " " + std::to_string(cluster->port()) + "\n";
      if (write(fds[1], line.data(), line.size()) < 0) _exit(2);
    } catch (...) {
      _exit(1);
    }
    _exit(0);  // no destructors, no stop()
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child could not start a cluster";
  std::string dir = out.substr(0, out.find(' '));
  int port = std::stoi(out.substr(out.find(' ') + 1));

  // The watchdog polls once a second.
  EXPECT_TRUE(eventually([&] { return !std::filesystem::exists(dir); }, seconds(60))) << dir;
  EXPECT_TRUE(eventually([&] { return !port_is_open(port); }, seconds(60))) << port;
}

// Followers and read replicas: a streaming replica sees the primary's writes and can be promoted.
TEST(harness, ReplicaStreamsFromPrimaryAndCanBePromoted) {
  auto primary = PgCluster::start(Shape::kHeroku, "primary");
  auto replica = primary->start_replica("follower");
  EXPECT_NE(replica->port(), primary->port());
  EXPECT_EQ(replica->query("SELECT pg_is_in_recovery()"), "t");

  PgConn on_primary = PgConn::connect(primary->app_conninfo());
  ASSERT_TRUE(on_primary.ok()) << on_primary.error();
  on_primary.exec("CREATE TABLE t AS SELECT 42 AS v");
  EXPECT_TRUE(eventually(
      [&] { return replica->query("SELECT to_regclass('public.t') IS NOT NULL") == "t"; },
      seconds(60)));
  // Same roles and password, over TLS, like a Heroku follower.
  PgConn app = PgConn::connect(replica->app_conninfo());
  ASSERT_TRUE(app.ok()) << app.error();
  EXPECT_EQ(app.value("SELECT v FROM t"), "42");
  EXPECT_THROW(app.exec("INSERT INTO t VALUES (1)"), std::runtime_error);

  replica->promote();
  EXPECT_EQ(replica->query("SELECT pg_is_in_recovery()"), "f");
  PgConn writer = PgConn::connect(replica->app_conninfo());
  ASSERT_TRUE(writer.ok()) << writer.error();
  EXPECT_NO_THROW(writer.exec("CREATE TABLE after_promotion (id int)"));
}

TEST(harness, PlainClusterAcceptsWithoutTlsAndHonoursOptions) {
  ClusterOptions options;
  options.durable = true;
  options.max_connections = 37;
  options.settings = {"work_mem=5MB"};
  auto cluster = PgCluster::start(Shape::kPlain, "plain", options);
  PgConn conn = PgConn::connect(cluster->app_conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error();
  EXPECT_EQ(conn.value("SHOW fsync"), "on");
  EXPECT_EQ(conn.value("SHOW max_connections"), "37");
  EXPECT_EQ(conn.value("SHOW work_mem"), "5MB");
  EXPECT_EQ(conn.value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "f");
}

}  // namespace
}  // namespace pgcutover::testing
