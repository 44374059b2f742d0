#include "control/cutover/smoke_test.h"

#include <unistd.h>

#include <chrono>

namespace pgcutover::control {

std::string smoke_test(const std::string& proxy_url, PgConn& destination,
                       const std::string& destination_name) {
  std::string e;
  auto spec = ConnSpec::parse(proxy_url, e);
  if (!spec) return "smoke URL: " + e;
  PgError pe;
  auto c = PgConn::connect(*spec, std::chrono::seconds(5), "proxy", pe);
  if (!c) return "smoke test: connecting through the proxy: " + pe.message;
  auto via = c->value("SELECT pg_postmaster_start_time()::text");
  auto direct = destination.value("SELECT pg_postmaster_start_time()::text");
  if (!via || !direct || *via != *direct)
    return "smoke test: the proxy does not reach the " + destination_name +
           " (read failed or another server answered)";
  std::string t = "pgcutover_smoke_" + std::to_string(::getpid());
  PgResult w = c->exec_script("BEGIN; CREATE TABLE " + t + " (x int); INSERT INTO " + t +
                              " VALUES (1); ROLLBACK");
  if (w) return {};
  c->exec_script("ROLLBACK");
  if (w.error().sqlstate != "42501") return "smoke test: write failed: " + w.error().message;
  // No CREATE privilege: prove at least that the session may write.
  auto ro = c->value("SELECT current_setting('transaction_read_only')");
  if (!ro || *ro != "off") return "smoke test: sessions through the proxy are read-only";
  return {};
}

}  // namespace pgcutover::control
