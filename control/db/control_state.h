// What pgcutoverctl remembers between runs (the replication method in use, the last
// validation), kept on the TARGET in pgcutover.control_state so that every operator and
// every machine sees the same answer, and the proxies' lag exporter can find the method.
// The pgcutover schema is never copied by `schema copy` nor compared by validate.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

// Creates the pgcutover schema and state table when missing.
bool ensure_control_state(PgConn& target, PgError& error);
// nullopt when the key (or the table) does not exist.
std::optional<boost::json::object> read_control_state(PgConn& target, const std::string& key);
bool write_control_state(PgConn& target, const std::string& key, const boost::json::object& v,
                         PgError& error);
bool delete_control_state(PgConn& target, const std::string& key);

// The recorded replication method ("logical", "external", "dump"), or "" when none.
std::string recorded_method(PgConn& target);

}  // namespace pgcutover::control
