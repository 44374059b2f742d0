// proxy/cutover/state_file.*: the active backend survives restarts; the file is replaced atomically
// and a damaged file is reported, never silently replaced by the initial backend.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/log.h"
#include "common/redact.h"
#include "proxy/cutover/state_file.h"

namespace pgcutover::proxy {
namespace {

std::string fresh_dir(const std::string& name) {
  std::string dir =
      ::testing::TempDir() + "/pgcutover_state_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(ProxyStateFile, MissingFileIsMissingNotError) {
  StateFileRead r = read_state_file(fresh_dir("missing") + "/state.json");
  EXPECT_EQ(r.status, StateFileStatus::kMissing);
}

TEST(ProxyStateFile, WriteThenReadRoundTrips) {
  std::string path = fresh_dir("roundtrip") + "/state.json";
  ASSERT_EQ(write_state_file(path, {"target", 7}), "");
  StateFileRead r = read_state_file(path);
  ASSERT_EQ(r.status, StateFileStatus::kOk) << r.error;
  EXPECT_EQ(r.state.backend, "target");
  EXPECT_EQ(r.state.epoch, 7u);
  // A second write replaces it and leaves no temp file behind.
  ASSERT_EQ(write_state_file(path, {"source", 8}), "");
  r = read_state_file(path);
  EXPECT_EQ(r.state.backend, "source");
  EXPECT_EQ(r.state.epoch, 8u);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(ProxyStateFile, HandWrittenFileWithSpacesParses) {
  std::string path = fresh_dir("spaces") + "/state.json";
  std::ofstream(path) << "{ \"epoch\" : 3 ,\n \"backend\" : \"target\", \"note\": \"x\" }\n";
  StateFileRead r = read_state_file(path);
  ASSERT_EQ(r.status, StateFileStatus::kOk) << r.error;
  EXPECT_EQ(r.state.backend, "target");
  EXPECT_EQ(r.state.epoch, 3u);
}

TEST(ProxyStateFile, DamagedFileIsAnErrorNamingIt) {
  std::string path = fresh_dir("damaged") + "/state.json";
  for (const char* text :
       {"", "{", "{\"backend\":\"target\"}", "{\"epoch\":1}", "{\"backend\":1,\"epoch\":1}",
        "{\"backend\":\"t\",\"epoch\":-1}", "{\"backend\":\"t\",\"epoch\":1} x",
        "{\"backend\":\"t\",\"epoch\":99999999999999999999999}"}) {
    std::ofstream(path, std::ios::trunc) << text;
    StateFileRead r = read_state_file(path);
    EXPECT_EQ(r.status, StateFileStatus::kError) << text;
    EXPECT_NE(r.error.find(path), std::string::npos) << r.error;
  }
}

TEST(ProxyStateFile, WriteIntoMissingDirectoryFails) {
  EXPECT_NE(write_state_file("/nonexistent-dir/state.json", {"target", 1}), "");
}

// Passwords in URLs never reach a log line.
TEST(ProxyLogRedaction, UrlPasswordsAreRedacted) {
  std::string r = redact_url("postgres://app:hunter2@db.example.com:5432/app");
  EXPECT_EQ(r.find("hunter2"), std::string::npos) << r;
  EXPECT_NE(r.find("db.example.com"), std::string::npos) << r;
  r = redact_url("host=db password=hunter2 user=app");
  EXPECT_EQ(r.find("hunter2"), std::string::npos) << r;
  EXPECT_EQ(r, "host=db password=*** user=app");
  r = redact_url("host=db PASSWORD = 'two words' user=app");
  EXPECT_EQ(r, "host=db PASSWORD = *** user=app");
  // '@' in the path or query is not userinfo; a URL without a password is left alone.
  EXPECT_EQ(redact_url("postgres://app@h/db?x=a@b"), "postgres://app@h/db?x=a@b");
  EXPECT_EQ(redact_url("postgresql://u:p%40ss@h:5432/db?sslmode=require"),
            "postgresql://u:***@h:5432/db?sslmode=require");
}

}  // namespace
}  // namespace pgcutover::proxy
