#include "common/fleet_contract.h"

namespace pgcutover::fleet {

std::string_view schema_sql() {
  // fleet_command.key is the controller's name for one command across both databases; a
  // member answers each (key, member) once. expires_at bounds how late a member may still act
  // on a command (a pause found after its deadline must not close a gate).
  return "CREATE SCHEMA IF NOT EXISTS pgcutover;"
         "CREATE SEQUENCE IF NOT EXISTS pgcutover.fleet_member_key AS integer;"
         "CREATE TABLE IF NOT EXISTS pgcutover.fleet_member ("
         " name text PRIMARY KEY,"
         " lock_key integer NOT NULL UNIQUE,"
         " host text NOT NULL DEFAULT '', pid integer NOT NULL DEFAULT 0,"
         " version text NOT NULL DEFAULT '', admin text NOT NULL DEFAULT '',"
         " backend text NOT NULL DEFAULT '', epoch bigint NOT NULL DEFAULT 0,"
         " state text NOT NULL DEFAULT '',"
         " registered_at timestamptz NOT NULL DEFAULT now(),"
         " seen_at timestamptz NOT NULL DEFAULT now());"
         "CREATE TABLE IF NOT EXISTS pgcutover.fleet_command ("
         " id bigserial PRIMARY KEY, key text NOT NULL, target text NOT NULL,"
         " method text NOT NULL, path text NOT NULL, body text NOT NULL DEFAULT '',"
         " issued_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,"
         " UNIQUE (key, target));"
         // A '*' command is for proxies the controller does not know (joining mid-flip): the
         // ones it commands by name or by their admin API are listed here and skip it.
         "ALTER TABLE pgcutover.fleet_command ADD COLUMN IF NOT EXISTS"
         " except_members text[] NOT NULL DEFAULT '{}';"
         "CREATE INDEX IF NOT EXISTS fleet_command_expires ON pgcutover.fleet_command (expires_at);"
         "CREATE TABLE IF NOT EXISTS pgcutover.fleet_ack ("
         " key text NOT NULL, member text NOT NULL, status integer NOT NULL, body text NOT NULL,"
         " acked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (key, member));"
         "CREATE TABLE IF NOT EXISTS pgcutover.fleet_authority ("
         " only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
         " backend text NOT NULL, epoch bigint NOT NULL,"
         " updated_at timestamptz NOT NULL DEFAULT now());"
         // The last cutover run (flip, revert) as its controller began and ended it, so that
         // `recover` on another machine finds a run whose controller died (its journal is a
         // local file); with the authority, it tells whether the flip step had started.
         "CREATE TABLE IF NOT EXISTS pgcutover.cutover_run ("
         " only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
         " run text NOT NULL, direction text NOT NULL, controller text NOT NULL DEFAULT '',"
         " begin_data text NOT NULL DEFAULT '{}',"
         " started_at timestamptz NOT NULL DEFAULT now(), ended_at timestamptz, outcome text);";
}

bool valid_member_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\0') continue;
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace pgcutover::fleet
