#include "control/db/control_state.h"

namespace pgcutover::control {

bool ensure_control_state(PgConn& target, PgError& error) {
  PgResult r = target.exec_script(
      "CREATE SCHEMA IF NOT EXISTS pgcutover;"
      "CREATE TABLE IF NOT EXISTS pgcutover.control_state ("
      " key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT "
      "now())");
  if (!r) error = r.error();
  return r.ok();
}

std::optional<boost::json::object> read_control_state(PgConn& target, const std::string& key) {
  // to_regclass first, so a target without the table is "no state", not an error.
  auto v = target.value(
      "SELECT CASE WHEN to_regclass('pgcutover.control_state') IS NULL THEN NULL ELSE "
      "(SELECT value::text FROM pgcutover.control_state WHERE key = $1) END",
      {key});
  if (!v) return std::nullopt;
  boost::system::error_code ec;
  auto parsed = boost::json::parse(*v, ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  return parsed.as_object();
}

bool write_control_state(PgConn& target, const std::string& key, const boost::json::object& v,
                         PgError& error) {
  if (!ensure_control_state(target, error)) return false;
  PgResult r = target.exec(
      "INSERT INTO pgcutover.control_state (key, value) VALUES ($1, $2::jsonb) "
      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
      {key, boost::json::serialize(v)});
  if (!r) error = r.error();
  return r.ok();
}

bool delete_control_state(PgConn& target, const std::string& key) {
  auto exists = target.value("SELECT to_regclass('pgcutover.control_state') IS NOT NULL");
  if (exists && *exists == "f") return true;
  return target.exec("DELETE FROM pgcutover.control_state WHERE key = $1", {key}).ok();
}

std::string recorded_method(PgConn& target) {
  auto s = read_control_state(target, "replication");
  if (!s) return {};
  auto it = s->find("method");
  if (it == s->end() || !it->value().is_string()) return {};
  return std::string(it->value().as_string());
}

}  // namespace pgcutover::control
