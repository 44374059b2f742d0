// Named prepared statements in transaction mode. A client believes its protocol-level
// statements ("Parse with a name", protocol docs "Extended Query") live for its whole session,
// but in transaction mode each transaction may run on a different server connection. The proxy
// therefore:
//  - remembers each client's statements (name -> query text + parameter types), and
//  - gives each distinct statement one proxy-wide server name derived from its text
//    ("pgc_<hash>"), so identical statements of different clients share one server-side
//    prepare; each server connection keeps an LRU of the names prepared on it
//    (max_prepared_statements, as PgBouncer's setting of the same name).
// The client must see exactly the responses PostgreSQL would send: ResponseQueue lists, in
// order, what each message forwarded to the server will answer, which of those answers the
// proxy swallows (its own re-Parse, its own eviction Close) and the answers it makes up itself
// (ParseComplete for a Parse it did not forward, CloseComplete for a Close of a shared
// statement it keeps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/framing.h"
#include "proxy/pool/prepared_lru.h"

namespace pgcutover::proxy {

// One client statement as its Parse defined it.
struct StatementDef {
  std::string server_name;  // "pgc_" + hash of query and parameter types
  std::string query;
  std::uint16_t param_count = 0;
  std::string param_types;  // param_count big-endian OIDs, as the client sent them
};

// A client's statements by the name it gave them.
using ClientStatements = std::unordered_map<std::string, StatementDef>;

// "pgc_" + 32 hex digits of SHA-256 over the query and the parameter type OIDs: the same
// statement text with the same declared types always gets the same server name.
std::string server_statement_name(std::string_view query, std::string_view param_types);

// What one message forwarded to the server (or made up by the proxy) answers, in order.
struct PendingResponse {
  enum class Kind : std::uint8_t {
    kParse,         // ParseComplete ('1'): forwarded, or swallowed when `swallow`
    kBind,          // BindComplete ('2')
    kDescribe,      // [ParameterDescription] then RowDescription ('T') or NoData ('n')
    kExecute,       // CommandComplete, EmptyQueryResponse or PortalSuspended
    kClose,         // CloseComplete ('3'): forwarded, or swallowed when `swallow`
    kSync,          // ReadyForQuery
    kSimple,        // Query / FunctionCall: everything up to ReadyForQuery
    kSynthParse,    // no server message: the proxy sends ParseComplete
    kSynthClose,    // no server message: the proxy sends CloseComplete
    kSynthMessage,  // no server message: the proxy sends `message`
  };
  PendingResponse(Kind k = Kind::kSync, bool swallow_answer = false, std::string server = {},
                  std::string client = {})
      : kind(k),
        swallow(swallow_answer),
        server_name(std::move(server)),
        client_name(std::move(client)) {}

  Kind kind = Kind::kSync;
  bool swallow = false;     // the proxy's own message: its answer never reaches the client
  std::string server_name;  // kParse: marked prepared on send, unmarked if it fails;
                            // kClose with swallow: an eviction, re-marked if skipped
  std::string client_name;  // kParse / kSynthParse from the client: forgotten if skipped
  // kSimple / kExecute of a SQL `DEALLOCATE name` of a tracked statement, sent to the server as
  // an empty statement: its EmptyQueryResponse becomes CommandComplete "DEALLOCATE", and the
  // client's statement is forgotten then.
  std::string dealloc_name;
  std::string message;  // kSynthMessage

  bool synthetic() const {
    return kind == Kind::kSynthParse || kind == Kind::kSynthClose || kind == Kind::kSynthMessage;
  }
};

// A FIFO of PendingResponse that costs nothing until used: std::deque allocates ~0.5 KB when
// constructed, and every client session has one (10,000 idle clients: 4.7 MB for empty
// queues). A vector with a moving head; compacted when the dead head outweighs the live part,
// trimmed back when a large pipeline has drained.
class ResponseQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  PendingResponse& front() { return items_[head_]; }
  const PendingResponse& front() const { return items_[head_]; }
  PendingResponse& back() { return items_.back(); }
  const PendingResponse& back() const { return items_.back(); }
  void push_back(PendingResponse p) {
    if (head_ > 32 && head_ * 2 > items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    items_.push_back(std::move(p));
  }
  void push_front(PendingResponse p) {
    if (head_ > 0) {
      items_[--head_] = std::move(p);
    } else {
      items_.insert(items_.begin(), std::move(p));
    }
  }
  void pop_front() {
    items_[head_] = PendingResponse{};  // frees its strings now
    if (++head_ == items_.size()) clear();
  }
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > kKeep) items_.shrink_to_fit();
  }

 private:
  static constexpr std::size_t kKeep = 64;
  std::vector<PendingResponse> items_;
  std::size_t head_ = 0;
};

// The statement a SQL `DEALLOCATE [PREPARE] name` names, folded as PostgreSQL folds an
// identifier (unquoted: lower case; "quoted": as written); nullopt for anything else,
// DEALLOCATE ALL included (the server runs that one; its tag tells the proxy).
// psycopg 3 sends it when its statement cache rotates, ActiveRecord when its statement pool
// evicts: on the server the name does not exist (the proxy renamed it), so the proxy answers it.
std::optional<std::string> sql_deallocate_target(std::string_view sql);

// A batch the proxy answers without a server connection, from a transaction-mode client that
// has none: named Parse, Close and Sync only, ending at a Sync (what libpq's PQprepare sends:
// Parse + Sync). Nothing in it needs the server now: statements are prepared lazily on the
// connection that first runs them. So no client waits for a pooled connection (and holds
// others up) just to be told ParseComplete: pgbench -j 2 -M prepared, whose threads block in
// PQprepare while another client of the same thread holds a pooled connection in a
// transaction, no longer stalls. The price: an error in the statement (syntax, unknown table)
// is reported by the first Bind or Describe that uses it instead of by the Parse (see
// docs/drivers.md). `buffered` is what the client sent; on success `statements` is updated,
// `consumed` bytes are answered by `reply` (ParseComplete / CloseComplete ..., ReadyForQuery
// 'I').
struct LocalAnswer {
  std::size_t consumed = 0;
  std::string reply;
};
std::optional<LocalAnswer> answer_without_server(protocol::Bytes buffered,
                                                 ClientStatements& statements,
                                                 const protocol::Limits& limits);

// The server answered the message at the head of `pending` with an ErrorResponse: it now
// ignores everything up to the next Sync and answers none of it (protocol docs, "Extended
// Query"). Drops those entries and undoes what the proxy assumed about them: a Parse that never
// ran is not prepared (on the server connection, nor, for the client's own Parse, as the
// client's statement); an eviction Close that never ran left its statement prepared. Returns
// true when the Sync is not in `pending` yet (the client has not sent it: the server skips
// what comes until it does).
bool fail_pending_to_sync(ResponseQueue& pending, PreparedLru& prepared,
                          ClientStatements& statements);

}  // namespace pgcutover::proxy
