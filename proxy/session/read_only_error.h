// Read-only mode (the dump-and-restore window): the server itself refuses writes with
// SQLSTATE 25006 because the proxy set default_transaction_read_only on the connection. Its
// message ("cannot execute INSERT in a read-only transaction") does not tell an application
// developer why; the proxy rewrites the message of those errors to name the migration and
// keeps the SQLSTATE, so code that checks 25006 still works. Read-only routes (replicas,
// proxy/pool/route_table.h) get the same treatment naming the route.
#pragma once

#include <string>
#include <string_view>

#include "protocol/framing.h"

namespace pgcutover::proxy {

// When `body` is an ErrorResponse with SQLSTATE 25006, appends the rewritten ErrorResponse
// (whole message, type byte included) to `out` and returns true.
bool rewrite_read_only_error(protocol::Bytes body, std::string& out);

// A read-only route's write (its server connections start read-only): the same
// ErrorResponse with the route's `database` and the fix added to the message, so the
// application's log says why. False (nothing appended) for any other error.
bool rewrite_read_only_error(protocol::Bytes body, std::string_view database, std::string& out);

}  // namespace pgcutover::proxy
