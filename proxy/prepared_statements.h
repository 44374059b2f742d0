// Named prepared statements in transaction mode (issue 4). A client believes its protocol-level
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
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pgcutover::proxy {

// One client statement as its Parse defined it.
struct StatementDef {
  std::string server_name;  // "pgc_" + hash of query and parameter types
  std::string query;
  std::uint16_t param_count = 0;
  std::string param_types;  // param_count big-endian OIDs, as the client sent them
};

// "pgc_" + 32 hex digits of SHA-256 over the query and the parameter type OIDs: the same
// statement text with the same declared types always gets the same server name.
std::string server_statement_name(std::string_view query, std::string_view param_types);

// The statement names prepared on one server connection, least recently used first out.
class PreparedLru {
 public:
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Marks `name` as most recently used; false when it is not prepared here.
  bool touch(const std::string& name);
  void insert(const std::string& name);
  void erase(const std::string& name);
  // The least recently used name, or empty when there is none.
  std::string oldest() const { return order_.empty() ? std::string() : order_.back(); }
  std::size_t size() const { return index_.size(); }
  void clear() {
    order_.clear();
    index_.clear();
  }

 private:
  std::list<std::string> order_;  // front = most recent
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

// What one message forwarded to the server (or made up by the proxy) answers, in order.
struct PendingResponse {
  enum class Kind : std::uint8_t {
    kParse,       // ParseComplete ('1'): forwarded, or swallowed when `swallow`
    kBind,        // BindComplete ('2')
    kDescribe,    // [ParameterDescription] then RowDescription ('T') or NoData ('n')
    kExecute,     // CommandComplete, EmptyQueryResponse or PortalSuspended
    kClose,       // CloseComplete ('3'): forwarded, or swallowed when `swallow`
    kSync,        // ReadyForQuery
    kSimple,      // Query / FunctionCall: everything up to ReadyForQuery
    kSynthParse,  // no server message: the proxy sends ParseComplete
    kSynthClose,  // no server message: the proxy sends CloseComplete
  };
  Kind kind = Kind::kSync;
  bool swallow = false;     // the proxy's own message: its answer never reaches the client
  std::string server_name;  // kParse: marked prepared on send, unmarked if it fails;
                            // kClose with swallow: an eviction, re-marked if skipped
  std::string client_name;  // kParse from the client: forgotten if its Parse fails

  bool synthetic() const { return kind == Kind::kSynthParse || kind == Kind::kSynthClose; }
};

using ResponseQueue = std::deque<PendingResponse>;

}  // namespace pgcutover::proxy
