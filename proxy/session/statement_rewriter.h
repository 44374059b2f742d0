// Named prepared statements in transaction mode (prepared_statements.h), one client's side of
// them. What the client parses is remembered here and prepared on whichever server connection
// runs its transaction under one proxy-wide name; the messages that name a statement are
// rewritten to that name; the answers the server sends for the proxy's own Parse and Close
// are swallowed, and the answers for what the proxy did not forward are made up, in order.
//
// No I/O and no session: client messages in, replacement bytes out; server messages in,
// "swallow or pass" out. ClientSession feeds it from the relay; the unit tests feed it recorded
// message sequences (tests/unit/proxy_statement_rewriter_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/framing.h"
#include "proxy/pool/prepared_lru.h"
#include "proxy/session/prepared_statements.h"

namespace pgcutover::proxy {

class StatementRewriter {
 public:
  // `max_prepared`: how many statements one server connection keeps (max_prepared_statements);
  // `session`: the client session's id, for the logs.
  StatementRewriter(std::size_t max_prepared, std::uint64_t session)
      : max_prepared_(max_prepared), session_(session) {}

  // Each complete client message about to be forwarded to `conn`, in order. Records what the
  // server will answer; returns true when the message is replaced by `out` (which may be
  // empty: the proxy answers it itself), false when it goes to the server as it came.
  bool client_message(ConnectionStatements& conn, char type, protocol::Bytes body,
                      std::string& out);

  // Each server message of `conn`, in order (`body` set for the messages the relay reads
  // whole; `transaction_failed`: the client's transaction is in the failed state). Returns
  // true when the client must not see it.
  bool server_message(ConnectionStatements& conn, char type, protocol::Bytes body,
                      bool transaction_failed);

  // An answer the proxy makes up is next in line: emit_synthetic() before the next server
  // message (and when the server's bytes end).
  bool synthetic_at_head() const { return !pending_.empty() && pending_.front().synthetic(); }
  void emit_synthetic(std::string& out);

  // A server connection was assigned or given back: nothing is outstanding on it.
  void reset_conversation();
  // Nothing to remember between transactions: no named or unnamed statement, nothing pending.
  bool holds_nothing() const {
    return statements_.empty() && !unnamed_ && unnamed_dealloc_.empty() &&
           portal_dealloc_.empty() && pending_.empty() && !server_skipping_;
  }

  // The client's named statements (an answer without a server reads them; DISCARD ALL on the
  // client's own server connection forgets them).
  ClientStatements& statements() { return statements_; }

 private:
  void ensure_prepared(ConnectionStatements& conn, const StatementDef& def, std::string& out);
  bool ensure_unnamed(ConnectionStatements& conn, std::string& out);
  void evict_for_one(ConnectionStatements& conn, std::string& out);

  std::size_t max_prepared_;
  std::uint64_t session_;
  ClientStatements statements_;
  ResponseQueue pending_;                // what each message sent to the server will answer
  bool server_skipping_ = false;         // the server reported an error and ignores all until Sync
  bool portals_possible_ = false;        // a Bind went to the server connection: no evictions now
  std::string unnamed_dealloc_;          // the unnamed statement stands in for DEALLOCATE of this
  std::string portal_dealloc_;           // the unnamed portal stands in for DEALLOCATE of this
  std::optional<StatementDef> unnamed_;  // the client's unnamed statement (server_name unused)
  std::uint64_t unnamed_tag_ = 0;        // its ConnectionStatements::unnamed_tag
};

}  // namespace pgcutover::proxy
