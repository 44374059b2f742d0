// [routes.*] and backend password sources (issue 10): the config contract, the route table a
// flip switches, the read-only route's rewritten error, and password_file / password_command
// (read, trailing newline dropped, failures named without the secret).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/config.h"
#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"
#include "proxy/pool/reader_balance.h"
#include "proxy/pool/route_table.h"
#include "proxy/session/read_only_error.h"
#include "proxy/settings/backend_secret.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {
namespace {

constexpr const char* kPath = "/etc/pgcutover/test.toml";

const char* kFourBackends = R"(
[proxy.tls]
client_tls = "disable"

[backends.source]
url = "postgres://app:pw@heroku.example.com/app?sslmode=disable"
[backends.target]
url = "postgres://app:pw@rds.example.com/app?sslmode=disable"
[backends.source_follower]
url = "postgres://app:pw@follower.example.com/app?sslmode=disable"
[backends.target_replica]
url = "postgres://app:pw@replica.example.com/app?sslmode=disable"
)";

const char* kReportsRoute = R"(
[routes.reports]
database = "app_reports"
read_only = true
backends = { source = "source_follower", target = "target_replica" }
)";

std::string error_of(const std::string& text) {
  try {
    Config::parse(text, kPath);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

TEST(ProxyRoutes, ConfigParses) {
  Config c = Config::parse(std::string(kFourBackends) + kReportsRoute, kPath);
  ASSERT_EQ(c.routes.size(), 1u);
  const Route& r = c.routes.at("reports");
  EXPECT_EQ(r.database, "app_reports");
  EXPECT_TRUE(r.read_only);
  EXPECT_EQ(r.backends.at("source"), std::vector<std::string>{"source_follower"});
  EXPECT_EQ(r.backends.at("target"), std::vector<std::string>{"target_replica"});
}

TEST(ProxyRoutes, DatabaseDefaultsToTheRouteName) {
  Config c = Config::parse(std::string(kFourBackends) +
                               "[routes.app_reports]\nbackends = { source = \"source_follower\", "
                               "target = \"target_replica\" }\n",
                           kPath);
  EXPECT_EQ(c.routes.at("app_reports").database, "app_reports");
  EXPECT_FALSE(c.routes.at("app_reports").read_only);
}

TEST(ProxyRoutes, ConfigErrorsNameTheKey) {
  std::string base = kFourBackends;
  EXPECT_NE(error_of(base + "[routes.r]\nread_only = true\n").find("routes.r.backends: missing"),
            std::string::npos);
  EXPECT_NE(error_of(base + "[routes.r]\nbackends = { source = \"nope\" }\n")
                .find("routes.r.backends.source: no [backends.nope] table"),
            std::string::npos);
  EXPECT_NE(error_of(base + "[routes.r]\nbackends = { elsewhere = \"source_follower\" }\n")
                .find("routes.r.backends.elsewhere: no [backends.elsewhere] table"),
            std::string::npos);
  EXPECT_NE(error_of(base + "[routes.r]\nbackends = { target = \"target_replica\" }\n")
                .find("no backend for the initial side \"source\""),
            std::string::npos);
  EXPECT_NE(error_of(base + "[routes.a]\ndatabase = \"x\"\nbackends = { source = \"source\" }\n" +
                     "[routes.b]\ndatabase = \"x\"\nbackends = { source = \"source\" }\n")
                .find("routes.b.database: \"x\" is already served by routes.a"),
            std::string::npos);
  EXPECT_NE(error_of(base + "[routes.r]\nbackends = { source = \"source\" }\nread_onyl = true\n")
                .find("routes.r.read_onyl: unknown key"),
            std::string::npos);
}

TEST(ProxyRoutes, TableFollowsTheSide) {
  auto settings = Settings::build(Config::parse(std::string(kFourBackends) + kReportsRoute, kPath));
  std::string error;
  auto on_source = RouteTable::build(*settings, "source", error);
  ASSERT_TRUE(on_source) << error;
  EXPECT_EQ(on_source->for_database("app").backend, "source");  // default route
  EXPECT_EQ(on_source->for_database("anything").route, "");
  const auto& reports = on_source->for_database("app_reports");
  EXPECT_EQ(reports.route, "reports");
  EXPECT_EQ(reports.backend, "source_follower");
  EXPECT_TRUE(reports.read_only);
  // A read-only route's server connections start read-only.
  bool has_ro = false;
  for (const auto& [k, v] : reports.endpoint->backend.url.startup_params)
    has_ro |= k == "default_transaction_read_only" && v == "on";
  EXPECT_TRUE(has_ro);
  EXPECT_EQ(reports.endpoint->backend.url.host, "follower.example.com");

  auto on_target = RouteTable::build(*settings, "target", error);
  ASSERT_TRUE(on_target) << error;
  EXPECT_EQ(on_target->for_database("app").backend, "target");
  EXPECT_EQ(on_target->for_database("app_reports").backend, "target_replica");
  EXPECT_EQ(on_target->for_database("app_reports").endpoint->backend.url.host,
            "replica.example.com");

  // A side some route does not cover cannot be flipped to.
  EXPECT_FALSE(RouteTable::build(*settings, "source_follower", error));
  EXPECT_NE(error.find("routes.reports has no backend for \"source_follower\""), std::string::npos);
  EXPECT_FALSE(RouteTable::build(*settings, "nowhere", error));

  std::string json = render_routes_json(*on_target, settings->config);
  EXPECT_NE(json.find("\"database\":\"app_reports\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"backend\":\"target_replica\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"read_only\":true"), std::string::npos) << json;
}

TEST(ProxyRoutes, ReadOnlyErrorNamesTheRoute) {
  std::string msg;
  protocol::append_error_response(msg,
                                  {.severity = "ERROR",
                                   .sqlstate = "25006",
                                   .message = "cannot execute INSERT in a read-only transaction",
                                   .detail = {},
                                   .hint = {}});
  auto body = protocol::as_bytes(std::string_view(msg).substr(protocol::kHeaderSize));
  std::string out;
  ASSERT_TRUE(rewrite_read_only_error(body, "app_reports", out));
  auto e = protocol::parse_error_notice(
      protocol::as_bytes(std::string_view(out).substr(protocol::kHeaderSize)));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate, "25006");
  EXPECT_NE(e->message.find("cannot execute INSERT in a read-only transaction"), std::string::npos);
  EXPECT_NE(e->message.find("\"app_reports\" is a read-only route"), std::string::npos);
  EXPECT_FALSE(e->hint.empty());

  std::string other;
  protocol::append_error_response(
      other, {.severity = "ERROR", .sqlstate = "42P01", .message = "x", .detail = {}, .hint = {}});
  std::string none;
  EXPECT_FALSE(rewrite_read_only_error(
      protocol::as_bytes(std::string_view(other).substr(protocol::kHeaderSize)), "r", none));
  EXPECT_TRUE(none.empty());
}

TEST(ProxyRoutes, SeveralReadersAreBalancedByLeastOutstandingQueries) {
  auto settings = Settings::build(Config::parse(
      std::string(kFourBackends) +
          "[routes.reports]\nread_only = true\nbackends = { source = \"source_follower\", "
          "target = [\"target_replica\", \"target\"] }\n",
      kPath));
  std::string error;
  auto table = RouteTable::build(*settings, "target", error);
  ASSERT_TRUE(table) << error;
  const auto& e = table->for_database("reports");
  ASSERT_EQ(e.readers.size(), 2u);
  EXPECT_EQ(e.backend, "target_replica,target");
  EXPECT_TRUE(table->for_database("app").readers.empty());  // one backend: no balancing

  ReaderLoad load;
  // Equally loaded readers take turns.
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target_replica");
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target");
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target_replica");
  load.add("target_replica", +2);
  load.add("target", +1);
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target");
  load.add("target", +2);
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target_replica");
  // A failing reader is taken out, even though it is the least loaded...
  load.add("target", -3);
  mark_reader_down("target", "test: connection refused");
  EXPECT_FALSE(reader_is_up("target"));
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target_replica");
  // ...and comes back when a connection to it works again.
  mark_reader_up("target");
  EXPECT_EQ(pick_reader(e.readers, load)->backend.name, "target");
  load.add("nobody", -5);  // never negative
  EXPECT_EQ(load.get("nobody"), 0);

  EXPECT_NE(error_of(std::string(kFourBackends) + "[routes.r]\nbackends = { source = [] }\n")
                .find("expected a backend name or a non-empty array"),
            std::string::npos);
}

std::string temp_file(const std::string& content) {
  char name[] = "/tmp/pgcutover-secret-XXXXXX";
  int fd = ::mkstemp(name);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  return name;
}

TEST(ProxyPasswordSource, FileWinsOverTheUrlAndLosesItsNewline) {
  std::string file = temp_file("s3cret-from-file\n");
  Config c = Config::parse(
      "[backends.source]\nurl = \"postgres://app:old@h/app\"\npassword_file = \"" + file + "\"\n",
      kPath);
  EXPECT_EQ(c.backend("source")->url.password, "s3cret-from-file");
  EXPECT_EQ(c.backend("source")->password_source.kind, PasswordSource::Kind::kFile);
  std::remove(file.c_str());
}

TEST(ProxyPasswordSource, CommandOutputIsTheSecret) {
  Config c = Config::parse(
      "[backends.source]\nurl = \"postgres://app@h/app\"\npassword_command = \"echo cmd-secret\"\n",
      kPath);
  EXPECT_EQ(c.backend("source")->url.password, "cmd-secret");
}

TEST(ProxyPasswordSource, FailuresNameTheKeyNotTheSecret) {
  std::string e = error_of(
      "[backends.source]\nurl = \"postgres://app@h/app\"\npassword_file = \"/nonexistent/pw\"\n");
  EXPECT_NE(e.find("backends.source.password_file: password_file \"/nonexistent/pw\""),
            std::string::npos)
      << e;
  e = error_of(
      "[backends.source]\nurl = \"postgres://app@h/app\"\npassword_command = \"echo "
      "leaked-secret; exit 3\"\n");
  EXPECT_NE(e.find("password_command exited with status 3"), std::string::npos) << e;
  EXPECT_EQ(e.find("leaked-secret"), std::string::npos) << e;
  e = error_of(
      "[backends.source]\nurl = \"postgres://app@h/app\"\npassword_command = \"true\"\n"
      "password_file = \"/x\"\n");
  EXPECT_NE(e.find("exclusive"), std::string::npos) << e;
}

TEST(ProxyPasswordSource, RefreshPicksUpARotation) {
  std::string file = temp_file("one\n");
  PasswordSource src;
  src.kind = PasswordSource::Kind::kFile;
  src.file = file;
  BackendSecret secret("source", src, "one");
  auto [pw, gen] = secret.current();
  EXPECT_EQ(pw, "one");
  EXPECT_FALSE(secret.refresh_after_failure(gen));  // same password: nothing new
  std::ofstream(file) << "two\n";
  // Read at most once a second: an immediate second failure does not re-read.
  EXPECT_FALSE(secret.refresh_after_failure(gen));
  ::usleep(1100 * 1000);
  EXPECT_TRUE(secret.refresh_after_failure(gen));
  EXPECT_EQ(secret.current().first, "two");
  EXPECT_GT(secret.current().second, gen);
  // Another shard that failed with the old generation reuses the refresh.
  EXPECT_TRUE(secret.refresh_after_failure(gen));
  std::remove(file.c_str());
}

}  // namespace
}  // namespace pgcutover::proxy
