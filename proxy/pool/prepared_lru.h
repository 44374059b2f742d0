// The statement names prepared on one server connection (transaction mode shares one server-side
// prepare between the clients that parse the same statement: proxy/session/prepared_statements.h).
// Bounded by max_prepared_statements, as PgBouncer's setting of the same name: the least recently
// used name is closed first.
#pragma once

#include <cstdint>

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>

namespace pgcutover::proxy {

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

// What the statement rewriter (proxy/session/statement_rewriter.h) keeps on one server
// connection: the proxy's statements prepared there, and which client Parse its unnamed
// statement came from (0: none or unknown), so that a client's Bind of its unnamed statement
// can tell whether to parse it again.
struct ConnectionStatements {
  PreparedLru prepared;
  std::uint64_t unnamed_tag = 0;
};

}  // namespace pgcutover::proxy
