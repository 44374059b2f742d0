// PostgreSQL's names for character encodings, as the server reports client_encoding in
// ParameterStatus: a client may ask for "utf-8", "unicode" or "euc-jp" and is answered "UTF8"
// and "EUC_JP". The proxy answers a login itself, so it must spell the value as the server
// would (drivers compare it, psycopg and JDBC among them).
#pragma once

#include <optional>
#include <string_view>

namespace pgcutover::protocol {

// The server's name for `name` (any case; '-', '_', spaces and other punctuation ignored,
// as PostgreSQL's own lookup does), or nullopt for a name PostgreSQL does not know.
std::optional<std::string_view> postgres_encoding_name(std::string_view name);

}  // namespace pgcutover::protocol
