// schema copy: the source's extensions, then its schema, onto the target. pg_dump is the
// standard tool, so the schema travels as pg_dump --schema-only --no-owner --no-acl output,
// filtered (no pgcutover schema, no CREATE EXTENSION/SCHEMA for what already exists) and
// replayed by psql in one transaction, so a failure leaves the target as it was.
#pragma once

#include <string>
#include <vector>

#include "control/command/context.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct ExtensionPlan {
  std::string name, schema, version;  // version "" = the target's default
  std::string sql;                    // CREATE EXTENSION IF NOT EXISTS ...
};

// CREATE SCHEMA/EXTENSION statements that give the target the source's extensions, in the
// source's schemas (heroku_ext included), at the source's version when the target has it.
std::vector<ExtensionPlan> plan_extensions(PgConn& source, PgConn& target, PgError& error);

// Keeps pg_restore's TOC list (pg_restore -l) minus what must not be replayed: extensions
// (created beforehand, maybe by an administrator) and schemas that already exist.
std::string filter_restore_list(const std::string& list,
                                const std::vector<std::string>& existing_schemas);

// The commands: `schema copy` (schema.cpp) and `schema diff` (schema_diff.cpp).
int cmd_schema_copy(CommandContext& ctx);
int cmd_schema_diff(CommandContext& ctx);

}  // namespace pgcutover::control
