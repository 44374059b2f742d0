// What the C++ tests of pgcutoverctl share: running the real binary and reading its JSON.
#pragma once

#include <boost/json.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "control/db/subprocess.h"
#include "tests/lib/pg_cluster.h"

namespace pgcutover::testing {

// A Heroku-shaped source whose plan allows logical replication (wal_level=logical, REPLICATION).
inline ClusterOptions logical_source_options() {
  ClusterOptions o;
  o.logical = true;
  return o;
}

struct CtlRun {
  int exit_code = -1;
  std::string out, err;
  double seconds = 0;
};

// Runs the real binary (CTest sets PGCUTOVER_CTL_BIN), capturing both streams.
inline CtlRun ctl(std::vector<std::string> args) {
  const char* bin = std::getenv("PGCUTOVER_CTL_BIN");
  if (bin == nullptr) bin = PGCUTOVER_CTL_BIN_PATH;
  args.insert(args.begin(), bin ? bin : "pgcutoverctl");
  auto r = control::run_client_tool(args, control::ConnSpec{});
  return {r.exit_code, r.output, r.errors, r.seconds};
}

// The document pgcutoverctl printed with --json, or an empty object when it is not one.
inline boost::json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

}  // namespace pgcutover::testing
