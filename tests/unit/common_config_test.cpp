// common/config.*: the configuration contract. Every error names the file, the key and the
// problem, never a secret; the example file in deploy/examples parses.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>

#include "common/config.h"
#include "common/fleet_contract.h"

namespace pgcutover {
namespace {

constexpr const char* kPath = "/etc/pgcutover/test.toml";

const char* kMinimal = R"(
[backends.source]
url = "postgres://app:pw@db.example.com/appdb"
)";

// Runs Config::parse and returns the ConfigError text ("" when it parsed).
std::string error_of(const std::string& text) {
  try {
    Config::parse(text, kPath);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

// The shipped example is the contract: it must load once its ${...} variables are set.
TEST(ProxyConfig, ExampleFileParses) {
  ::setenv("APP_PROXY_PASSWORD", "app-secret", 1);
  ::setenv("HEROKU_DATABASE_URL", "postgres://u1:p%40ss@ec2-1.compute.amazonaws.com:5432/d1", 1);
  ::setenv("RDS_DATABASE_URL", "postgresql://u2:x@mydb.rds.amazonaws.com/d2", 1);
  ::setenv("PGCUTOVER_ADMIN_TOKEN", "tok", 1);
  // This file is <top>/tests/unit/common_config_test.cpp.
  std::string top = __FILE__;
  top = top.substr(0, top.rfind("/tests/unit/"));
  if (const char* src = std::getenv("PGCUTOVER_SOURCE_DIR")) top = src;
  std::string path = top + "/deploy/examples/pgcutover.toml";
  Config c = Config::load(path);
  EXPECT_EQ(c.proxy.listen_port, 6432);
  EXPECT_EQ(c.proxy.pool_mode, PoolMode::kTransaction);
  EXPECT_EQ(c.proxy.default_pool_size, 20);
  EXPECT_EQ(c.proxy.max_message_size, 67108864);
  EXPECT_EQ(c.proxy.query_wait_timeout, std::chrono::seconds(120));
  EXPECT_EQ(c.tls.client_tls, ClientTls::kAllow);
  EXPECT_EQ(c.auth.auth_type, AuthType::kScramSha256);
  ASSERT_NE(c.user("app"), nullptr);
  EXPECT_EQ(c.user("app")->password, "app-secret");
  ASSERT_NE(c.backend("source"), nullptr);
  EXPECT_EQ(c.backend("source")->url.password, "p@ss");
  EXPECT_EQ(c.backend("source")->sslmode, SslMode::kRequire);
  EXPECT_EQ(c.backend("target")->sslmode, SslMode::kVerifyFull);
  EXPECT_EQ(c.backend("target")->url.port, 5432);
  EXPECT_EQ(c.cutover.initial_backend, "source");
  EXPECT_EQ(c.admin.token, "tok");
  ASSERT_EQ(c.control.proxies.size(), 1u);
  EXPECT_EQ(c.control.proxies[0].admin_url, "http://127.0.0.1:6480");
}

// Defaults apply to every key not given; only a backend is required.
TEST(ProxyConfig, MinimalFileGetsDefaults) {
  Config c = Config::parse(kMinimal, kPath);
  EXPECT_EQ(c.proxy.listen_addr, "127.0.0.1");
  EXPECT_EQ(c.proxy.max_client_conn, 1000);
  EXPECT_EQ(c.proxy.client_idle_timeout, Duration(0));
  EXPECT_EQ(c.backend("source")->url.dbname, "appdb");
  EXPECT_EQ(c.backend("source")->url.port, 5432);
}

// Fractional seconds are allowed for every duration.
TEST(ProxyConfig, FractionalDurations) {
  Config c = Config::parse(std::string(kMinimal) + "[proxy]\nquery_wait_timeout = 0.25\n", kPath);
  EXPECT_EQ(c.proxy.query_wait_timeout, Duration(250));
}

TEST(ProxyConfig, UnknownKeyNamesFileAndKey) {
  std::string e = error_of(std::string(kMinimal) + "[proxy]\npool_mod = \"session\"\n");
  EXPECT_NE(e.find(kPath), std::string::npos) << e;
  EXPECT_NE(e.find("proxy.pool_mod"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean pool_mode?"), std::string::npos) << e;
}

// A suggestion only when the key is a typo away; a key unlike any other gets none.
TEST(ProxyConfig, UnknownKeySuggestsOnlyNearKeys) {
  std::string e = error_of(std::string(kMinimal) + "[proxy]\nlisten_prot = 6432\n");
  EXPECT_NE(e.find("did you mean listen_port?"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "[proxy]\ncolour = \"blue\"\n");
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_EQ(e.find("did you mean"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "[proxxy]\nthreads = 1\n");
  EXPECT_NE(e.find("did you mean proxy?"), std::string::npos) << e;
}

// Admin HTTPS needs the certificate and its key; half of it is a mistake, not plain HTTP.
TEST(ProxyConfig, AdminTlsNeedsBothFiles) {
  Config c = Config::parse(
      std::string(kMinimal) + "[admin]\ntls_cert_file = \"/a.crt\"\ntls_key_file = \"/a.key\"\n",
      kPath);
  EXPECT_EQ(c.admin.tls_cert_file, "/a.crt");
  EXPECT_EQ(c.admin.tls_key_file, "/a.key");
  std::string e = error_of(std::string(kMinimal) + "[admin]\ntls_key_file = \"/a.key\"\n");
  EXPECT_NE(e.find("admin.tls_cert_file"), std::string::npos) << e;
  EXPECT_NE(e.find("admin.tls_key_file"), std::string::npos) << e;
}

TEST(ProxyConfig, UnknownSectionIsAnError) {
  std::string e = error_of(std::string(kMinimal) + "[proxxy]\nthreads = 1\n");
  EXPECT_NE(e.find("proxxy: unknown key"), std::string::npos) << e;
}

TEST(ProxyConfig, BadTypeNamesKeyAndTypes) {
  std::string e = error_of(std::string(kMinimal) + "[proxy]\ndefault_pool_size = \"20\"\n");
  EXPECT_NE(
      e.find(std::string(kPath) + ": proxy.default_pool_size: expected an integer, got a string"),
      std::string::npos)
      << e;
}

TEST(ProxyConfig, UnknownEnumValueListsAllowedValues) {
  std::string e = error_of(std::string(kMinimal) + "[proxy]\npool_mode = \"statement\"\n");
  EXPECT_NE(
      e.find(
          "proxy.pool_mode: unknown value \"statement\" (expected one of: session, transaction)"),
      std::string::npos)
      << e;
}

TEST(ProxyConfig, MissingRequiredKey) {
  std::string e = error_of("[backends.source]\nsslmode = \"require\"\n");
  EXPECT_NE(e.find("backends.source.url: missing required key"), std::string::npos) << e;
}

TEST(ProxyConfig, NoBackendIsAnError) {
  std::string e = error_of("[proxy]\nthreads = 1\n");
  EXPECT_NE(e.find("backends: at least one"), std::string::npos) << e;
}

TEST(ProxyConfig, OutOfRangeInteger) {
  std::string e = error_of(std::string(kMinimal) + "[proxy]\nlisten_port = 70000\n");
  EXPECT_NE(e.find("proxy.listen_port: value 70000 out of range"), std::string::npos) << e;
}

TEST(ProxyConfig, TomlSyntaxErrorNamesFileAndLine) {
  std::string e = error_of("[proxy\nthreads = 1\n");
  EXPECT_NE(e.find(kPath), std::string::npos) << e;
  EXPECT_NE(e.find("line 1"), std::string::npos) << e;
}

TEST(ProxyConfig, InitialBackendMustExist) {
  std::string e = error_of(std::string(kMinimal) + "[cutover]\ninitial_backend = \"target\"\n");
  EXPECT_NE(e.find("cutover.initial_backend: no [backends.target] table"), std::string::npos) << e;
}

TEST(ProxyConfig, VerifyFullNeedsRootCert) {
  std::string e =
      error_of("[backends.source]\nurl = \"postgres://a:b@h/d\"\nsslmode = \"verify-full\"\n");
  EXPECT_NE(e.find("backends.source.sslrootcert: required"), std::string::npos) << e;
}

// ${VAR} is substituted in every string; an unset variable is named; $$ is a literal $.
TEST(ProxyConfig, EnvironmentSubstitution) {
  ::setenv("PGCUTOVER_TEST_HOST", "db.internal", 1);
  ::setenv("PGCUTOVER_TEST_PW", "s3cr$t", 1);
  Config c = Config::parse(
      "[backends.source]\nurl = "
      "\"postgres://app:${PGCUTOVER_TEST_PW}@${PGCUTOVER_TEST_HOST}:6000/x\"\n"
      "[users.app]\npassword = \"a$$b\"\n",
      kPath);
  EXPECT_EQ(c.backend("source")->url.host, "db.internal");
  EXPECT_EQ(c.backend("source")->url.port, 6000);
  EXPECT_EQ(c.backend("source")->url.password, "s3cr$t");
  EXPECT_EQ(c.user("app")->password, "a$b");
}

TEST(ProxyConfig, UnsetEnvironmentVariableIsNamed) {
  ::unsetenv("PGCUTOVER_TEST_UNSET");
  std::string e =
      error_of(std::string(kMinimal) + "[admin]\ntoken = \"${PGCUTOVER_TEST_UNSET}\"\n");
  EXPECT_NE(e.find("admin.token: environment variable PGCUTOVER_TEST_UNSET is not set"),
            std::string::npos)
      << e;
}

// A malformed URL is reported without echoing it: it holds the password.
TEST(ProxyConfig, BadUrlErrorHasNoSecret) {
  std::string e = error_of("[backends.source]\nurl = \"postgres://app:hunter2@host:99999/d\"\n");
  EXPECT_NE(e.find("backends.source.url: bad port"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  e = error_of("[backends.source]\nurl = \"mysql://app:hunter2@host/d\"\n");
  EXPECT_NE(e.find("backends.source.url"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

// Found by tests/fuzz/fuzz_config: a password with an unescaped '?' or '/' was split into the
// query or path, and the resulting error quoted its tail; an sslmode value quoted the password.
TEST(ProxyConfig, UnescapedPasswordIsNotQuotedInErrors) {
  std::string e = error_of("[backends.source]\nurl = \"postgres://app:hun?ter2=x@host/d\"\n");
  EXPECT_NE(e.find("percent-encode"), std::string::npos) << e;
  EXPECT_EQ(e.find("ter2"), std::string::npos) << e;
  e = error_of("[backends.source]\nurl = \"postgres://app:hun/ter2@host/d\"\n");
  EXPECT_NE(e.find("percent-encode"), std::string::npos) << e;
  EXPECT_EQ(e.find("ter2"), std::string::npos) << e;
  e = error_of("[backends.source]\nurl = \"postgres://app:hunter2@host/d?sslmode=x:hunter2@y\"\n");
  EXPECT_NE(e.find("unknown sslmode"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  Config c = Config::parse(
      "[backends.source]\nurl = \"postgres://app:hun%3Fter%2F2@host/d?application_name=a@b\"\n",
      kPath);
  EXPECT_EQ(c.backend("source")->url.password, "hun?ter/2");
}

TEST(ProxyConfig, UrlSslmodeConflictIsRefused) {
  std::string e = error_of(
      "[backends.source]\nurl = \"postgres://a:b@h/d?sslmode=require\"\nsslmode = \"disable\"\n");
  EXPECT_NE(e.find("backends.source.sslmode: conflicts"), std::string::npos) << e;
  Config c =
      Config::parse("[backends.source]\nurl = \"postgres://a:b@h/d?sslmode=disable\"\n", kPath);
  EXPECT_EQ(c.backend("source")->sslmode, SslMode::kDisable);
}

TEST(ProxyConfig, UserNeedsExactlyOneSecret) {
  std::string e = error_of(std::string(kMinimal) + "[users.app]\n");
  EXPECT_NE(e.find("users.app: exactly one of password or scram_verifier"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "[users.app]\nscram_verifier = \"plaintext\"\n");
  EXPECT_NE(e.find("users.app.scram_verifier: malformed SCRAM verifier"), std::string::npos) << e;
  EXPECT_EQ(e.find("plaintext"), std::string::npos) << e;
}

TEST(ProxyConfig, PasswordMayBeAVerifierOrMd5Hash) {
  Config c = Config::parse(std::string(kMinimal) +
                               "[users.a]\npassword = \"SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB\"\n"
                               "[users.b]\npassword = \"md5" +
                               std::string(32, 'a') + "\"\n",
                           kPath);
  EXPECT_EQ(c.user("a")->scram_verifier, "SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB");
  EXPECT_TRUE(c.user("a")->password.empty());
  EXPECT_EQ(c.user("b")->md5_hash, "md5" + std::string(32, 'a'));
}

// auth_file in PgBouncer's userlist format, relative to the config file's directory.
TEST(ProxyConfig, AuthFileIsLoaded) {
  std::string dir = ::testing::TempDir();
  {
    std::ofstream f(dir + "/userlist.txt");
    f << "; comment\n\"alice\" \"SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB\"\n\"bob\" \"pa\"\"ss\"\n";
  }
  Config c = Config::parse(std::string(kMinimal) + "[auth]\nauth_file = \"userlist.txt\"\n",
                           dir + "/pgcutover.toml");
  ASSERT_NE(c.user("alice"), nullptr);
  EXPECT_FALSE(c.user("alice")->scram_verifier.empty());
  ASSERT_NE(c.user("bob"), nullptr);
  EXPECT_EQ(c.user("bob")->password, "pa\"ss");
  {
    std::ofstream f(dir + "/bad.txt");
    f << "\"carol\" \"unterminated\n";
  }
  std::string e;
  try {
    Config::parse(std::string(kMinimal) + "[auth]\nauth_file = \"bad.txt\"\n",
                  dir + "/pgcutover.toml");
  } catch (const ConfigError& err) {
    e = err.what();
  }
  EXPECT_NE(e.find("auth.auth_file"), std::string::npos) << e;
  EXPECT_NE(e.find("line 1"), std::string::npos) << e;
}

TEST(ProxyConfig, MissingFileNamesIt) {
  try {
    Config::load("/nonexistent/pgcutover.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/pgcutover.toml"), std::string::npos);
  }
}

// URL parsing: both schemes, percent-encoded credentials, IPv6, query parameters.
TEST(ProxyBackendUrl, Parses) {
  BackendUrl u = parse_backend_url(
      "postgresql://us%40er:p%2Fa%3As%25s@[::1]:6543/"
      "my%20db?sslmode=verify-full&application_name=x");
  EXPECT_EQ(u.user, "us@er");
  EXPECT_EQ(u.password, "p/a:s%s");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 6543);
  EXPECT_EQ(u.dbname, "my db");
  EXPECT_EQ(u.sslmode, "verify-full");
  ASSERT_EQ(u.startup_params.size(), 1u);
  EXPECT_EQ(u.startup_params[0].first, "application_name");

  u = parse_backend_url("postgres://bob@localhost");
  EXPECT_EQ(u.dbname, "bob");
  EXPECT_EQ(u.port, 5432);
  EXPECT_TRUE(u.password.empty());
}

TEST(ProxyBackendUrl, Rejects) {
  EXPECT_THROW(parse_backend_url("postgres://u:p@/d"), ConfigError);
  EXPECT_THROW(parse_backend_url("postgres://u:p%zz@h/d"), ConfigError);
  EXPECT_THROW(parse_backend_url("postgres://u:p%4@h/d"), ConfigError);
  EXPECT_THROW(parse_backend_url("postgres://u:p@h:0/d"), ConfigError);
  EXPECT_THROW(parse_backend_url("postgres://u:p@h/d?frobnicate=1"), ConfigError);
  EXPECT_THROW(parse_backend_url("postgres://u:p@h1,h2/d"), ConfigError);
  EXPECT_THROW(parse_backend_url("http://u:p@h/d"), ConfigError);
}

TEST(ProxyEnv, Substitution) {
  ::setenv("PGCUTOVER_TEST_A", "1", 1);
  EXPECT_EQ(substitute_env("x${PGCUTOVER_TEST_A}y$z$$"), "x1y$z$");
  EXPECT_THROW(substitute_env("${PGCUTOVER_TEST_A"), ConfigError);
}

// [fleet]: off by default; the channel defaults to the source and target backends; a name that
// could not go into SQL and logs as it is, an unknown channel backend or a too-short
// reconnect interval is refused with the key.
TEST(ProxyConfig, FleetTable) {
  Config c = Config::parse(kMinimal, kPath);
  EXPECT_FALSE(c.fleet.enabled);
  EXPECT_EQ(c.fleet.channel, std::vector<std::string>{"source"});
  const std::string two = std::string(kMinimal) +
                          "[backends.target]\nurl = \"postgres://app:pw@rds.example.com/appdb\"\n";
  c = Config::parse(two + "[fleet]\nenabled = true\nname = \"web.1\"\n", kPath);
  EXPECT_TRUE(c.fleet.enabled);
  EXPECT_EQ(c.fleet.name, "web.1");
  std::vector<std::string> both{"source", "target"};
  EXPECT_EQ(c.fleet.channel, both);
  EXPECT_EQ(c.fleet.reconnect_interval, std::chrono::milliseconds(2000));
  c = Config::parse(two + "[fleet]\nchannel = [\"target\"]\n", kPath);
  EXPECT_EQ(c.fleet.channel, std::vector<std::string>{"target"});
  EXPECT_NE(
      error_of(std::string(kMinimal) + "[fleet]\nname = \"web 1; drop\"\n").find("fleet.name"),
      std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "[fleet]\nchannel = [\"elsewhere\"]\n")
                .find("no [backends.elsewhere]"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "[fleet]\nreconnect_interval = 0.01\n")
                .find("fleet.reconnect_interval"),
            std::string::npos);
  EXPECT_NE(
      error_of(std::string(kMinimal) + "[fleet]\nenable = true\n").find("did you mean enabled"),
      std::string::npos);
}

TEST(FleetContract, NamesAndLiterals) {
  EXPECT_TRUE(fleet::valid_member_name("web.1.4f2a-9c"));
  EXPECT_TRUE(fleet::valid_member_name("pod@ns:1_x"));
  EXPECT_FALSE(fleet::valid_member_name(""));
  EXPECT_FALSE(fleet::valid_member_name("a'b"));
  EXPECT_FALSE(fleet::valid_member_name(std::string(64, 'a')));
  EXPECT_EQ(fleet::quote_literal("it's"), "'it''s'");
  EXPECT_EQ(fleet::quote_literal(std::string("a\0b", 3)), "'ab'");
  EXPECT_EQ(fleet::quote_literal("back\\slash"), "'back\\slash'");
}

}  // namespace
}  // namespace pgcutover
