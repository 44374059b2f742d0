#include "proxy/session/statement_rewriter.h"

#include <atomic>

#include "common/log.h"
#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {
namespace fe = protocol::frontend;
namespace be = protocol::backend;
namespace {

// The portal the proxy closes to get a CloseComplete back (see client_message): a name
// no driver uses; closing a portal that does not exist is not an error.
constexpr std::string_view kAnchorPortal = "pgcutover\x01anchor";

// Identifies one client Parse of the unnamed statement, proxy-wide (ServerConnection::unnamed_tag).
std::uint64_t next_unnamed_tag() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

void StatementRewriter::reset_conversation() {
  pending_.clear();
  server_skipping_ = false;
  portals_possible_ = false;
}

bool StatementRewriter::client_message(ConnectionStatements& conn, char type, protocol::Bytes body,
                                       std::string& out) {
  using Kind = PendingResponse::Kind;
  if (server_skipping_) {
    // After an ErrorResponse the server discards every message until Sync and answers none
    // (protocol docs, "Extended Query"): nothing to record or make up, as PostgreSQL would.
    if (type == fe::kSync) {
      server_skipping_ = false;
      pending_.push_back({Kind::kSync, false, {}, {}});
    }
    return false;
  }
  switch (type) {
    case fe::kQuery: {
      // A simple Query drops the unnamed statement (protocol docs, "Extended Query").
      unnamed_.reset();
      conn.unnamed_tag = 0;
      auto q = protocol::parse_query(body);
      auto name = q ? sql_deallocate_target(q->sql) : std::nullopt;
      if (name && statements_.count(*name) != 0) {
        // The server never had the client's name (it has the shared pgc_ one, maybe used by
        // other clients): an empty query stands in, answered as DEALLOCATE (server_message).
        protocol::append_query(out, "");
        PendingResponse r{Kind::kSimple, false, {}, {}};
        r.dealloc_name = *name;
        pending_.push_back(std::move(r));
        return true;
      }
      pending_.push_back({Kind::kSimple, false, {}, {}});
      return false;
    }
    case fe::kFunctionCall:
      pending_.push_back({Kind::kSimple, false, {}, {}});
      return false;
    case fe::kSync:
      pending_.push_back({Kind::kSync, false, {}, {}});
      return false;
    case fe::kExecute: {
      PendingResponse r{Kind::kExecute, false, {}, {}};
      auto e = protocol::parse_execute(body);
      if (e && e->portal.empty()) r.dealloc_name = portal_dealloc_;
      pending_.push_back(std::move(r));
      return false;
    }
    case fe::kParse: {
      auto p = protocol::parse_parse(body);
      if (!p || p->name.empty()) {  // the unnamed statement (or bytes the server will refuse)
        unnamed_dealloc_.clear();
        unnamed_.reset();
        conn.unnamed_tag = 0;
        auto name = p ? sql_deallocate_target(p->query) : std::nullopt;
        pending_.push_back({Kind::kParse, false, {}, {}});
        if (name && statements_.count(*name) != 0) {
          // SQL DEALLOCATE of a tracked statement through the extended protocol (psycopg 3):
          // as for a simple Query, an empty statement stands in (see kQuery).
          unnamed_dealloc_ = *name;
          protocol::append_parse(out, "", "", 0, {});
          return true;
        }
        if (p) {
          // Remembered for a Bind or Describe in a later transaction, which may run on
          // another server connection (asyncpg without a statement cache: Parse + Describe +
          // Sync, then Bind + Execute + Sync).
          unnamed_ = StatementDef{{},
                                  std::string(p->query),
                                  p->param_count,
                                  std::string(reinterpret_cast<const char*>(p->param_types.data()),
                                              p->param_types.size())};
          unnamed_tag_ = next_unnamed_tag();
          conn.unnamed_tag = unnamed_tag_;
        }
        return false;
      }
      std::string types(reinterpret_cast<const char*>(p->param_types.data()),
                        p->param_types.size());
      StatementDef def{server_statement_name(p->query, types), std::string(p->query),
                       p->param_count, std::move(types)};
      // A Parse of a name the client already uses would fail with 42P05 on PostgreSQL; the
      // proxy lets the new definition replace the old one (drivers Close before re-Parse).
      std::string client_name(p->name);
      const StatementDef& d = statements_[client_name] = std::move(def);
      if (conn.prepared.touch(d.server_name)) {
        stats().prepared_cache_hits.fetch_add(1, std::memory_order_relaxed);
        pending_.push_back({Kind::kSynthParse, false, d.server_name, client_name});
        return true;
      }
      stats().prepared_cache_misses.fetch_add(1, std::memory_order_relaxed);
      evict_for_one(conn, out);
      protocol::append_parse(
          out, d.server_name, d.query, d.param_count,
          protocol::Bytes(reinterpret_cast<const std::uint8_t*>(d.param_types.data()),
                          d.param_types.size()));
      conn.prepared.insert(d.server_name);  // now, so later messages of the batch see it
      pending_.push_back({Kind::kParse, false, d.server_name, client_name});
      return true;
    }
    case fe::kBind: {
      auto b = protocol::parse_bind(body);
      // From here a portal may exist until the transaction ends: evictions wait for the next
      // transaction, so no statement is closed under a portal bound from it.
      portals_possible_ = true;
      if (b && b->portal.empty()) portal_dealloc_ = b->statement.empty() ? unnamed_dealloc_ : "";
      if (b && b->statement.empty() && ensure_unnamed(conn, out)) {
        protocol::append_bind(out, b->portal, "", b->rest);
        pending_.push_back({Kind::kBind, false, {}, {}});
        return true;
      }
      auto it = b ? statements_.find(std::string(b->statement)) : statements_.end();
      if (!b || b->statement.empty() || it == statements_.end()) {
        // Unnamed or unknown: the server answers (an unknown name gets PostgreSQL's 26000).
        pending_.push_back({Kind::kBind, false, {}, {}});
        return false;
      }
      ensure_prepared(conn, it->second, out);
      protocol::append_bind(out, b->portal, it->second.server_name, b->rest);
      pending_.push_back({Kind::kBind, false, {}, {}});
      return true;
    }
    case fe::kDescribe: {
      auto d = protocol::parse_describe(body);
      if (d && d->kind == 'S' && d->name.empty() && ensure_unnamed(conn, out)) {
        protocol::append_describe(out, 'S', "");
        pending_.push_back({Kind::kDescribe, false, {}, {}});
        return true;
      }
      auto it = d && d->kind == 'S' ? statements_.find(std::string(d->name)) : statements_.end();
      if (!d || d->kind != 'S' || d->name.empty() || it == statements_.end()) {
        pending_.push_back({Kind::kDescribe, false, {}, {}});
        return false;
      }
      ensure_prepared(conn, it->second, out);
      protocol::append_describe(out, 'S', it->second.server_name);
      pending_.push_back({Kind::kDescribe, false, {}, {}});
      return true;
    }
    case fe::kClose: {
      auto c = protocol::parse_close(body);
      if (!c || c->kind != 'S' || c->name.empty()) {
        pending_.push_back({Kind::kClose, false, {}, {}});
        return false;
      }
      // The server statement may be shared with other clients and stays in the LRU; the
      // client's name is gone. Closing an unknown name is no error either (protocol docs,
      // "Close").
      statements_.erase(std::string(c->name));
      pending_.push_back({Kind::kSynthClose, false, {}, {}});
      return true;
    }
    case fe::kFlush:
      if (!pending_.empty() && pending_.back().synthetic()) {
        // The client waits for an answer the proxy makes up, but no server message is behind
        // it to carry it out. Close of a portal that does not exist is no error and answers
        // CloseComplete (protocol docs, "Close"): that answer, swallowed, emits it.
        protocol::append_close(out, 'P', kAnchorPortal);
        pending_.push_back({Kind::kClose, true, {}, {}});
        protocol::append_flush(out);
        return true;
      }
      return false;
    default:
      return false;
  }
}

// The client binds or describes its unnamed statement: when the server connection's unnamed
// statement is not the one this client last parsed (another server connection ran that Parse,
// or another client's Parse replaced it), parse it again first. False: nothing to do.
bool StatementRewriter::ensure_unnamed(ConnectionStatements& conn, std::string& out) {
  if (!unnamed_ || conn.unnamed_tag == unnamed_tag_) return false;
  protocol::append_parse(
      out, "", unnamed_->query, unnamed_->param_count,
      protocol::Bytes(reinterpret_cast<const std::uint8_t*>(unnamed_->param_types.data()),
                      unnamed_->param_types.size()));
  conn.unnamed_tag = unnamed_tag_;
  pending_.push_back({PendingResponse::Kind::kParse, true, {}, {}});
  return true;
}

// The client refers to one of its statements: make sure the server connection has it.
void StatementRewriter::ensure_prepared(ConnectionStatements& conn, const StatementDef& def,
                                        std::string& out) {
  if (conn.prepared.touch(def.server_name)) {
    stats().prepared_cache_hits.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  stats().prepared_cache_misses.fetch_add(1, std::memory_order_relaxed);
  evict_for_one(conn, out);
  protocol::append_parse(
      out, def.server_name, def.query, def.param_count,
      protocol::Bytes(reinterpret_cast<const std::uint8_t*>(def.param_types.data()),
                      def.param_types.size()));
  conn.prepared.insert(def.server_name);
  pending_.push_back({PendingResponse::Kind::kParse, true, def.server_name, {}});
}

// Makes room for one more statement on the server connection (max_prepared_statements).
void StatementRewriter::evict_for_one(ConnectionStatements& conn, std::string& out) {
  // Once a portal may exist the cache may grow past the cap until the transaction ends.
  if (portals_possible_) return;
  const std::size_t cap = max_prepared_;
  while (conn.prepared.size() >= cap && conn.prepared.size() > 0) {
    std::string victim = conn.prepared.oldest();
    conn.prepared.erase(victim);
    protocol::append_close(out, 'S', victim);
    pending_.push_back({PendingResponse::Kind::kClose, true, victim, {}});
  }
}

bool StatementRewriter::server_message(ConnectionStatements& conn, char type, protocol::Bytes body,
                                       bool transaction_failed) {
  using Kind = PendingResponse::Kind;
  if (type == be::kCommandComplete) {
    // DISCARD ALL and DEALLOCATE ALL drop every statement of the server session (the
    // proxy's shared ones too) and, as far as the client knows, all of its own.
    auto c = protocol::parse_command_complete(body);
    if (c && (c->tag == "DISCARD ALL" || c->tag == "DEALLOCATE ALL")) {
      conn.prepared.clear();
      statements_.clear();
    }
  }
  if (pending_.empty()) return false;  // asynchronous messages
  PendingResponse& head = pending_.front();
  auto pop_if = [&](bool match) {
    if (!match) {
      log::error("bug_prepared_response_order",
                 {{"session", std::to_string(session_)}, {"type", std::string(1, type)}});
      return false;
    }
    bool swallow = head.swallow;
    pending_.pop_front();
    return swallow;
  };
  switch (type) {
    case be::kNoticeResponse:
    case be::kParameterStatus:
    case be::kNotificationResponse:
    case be::kParameterDescription:
      return false;
    case be::kErrorResponse:
      // Inside a simple Query or at Sync (a COMMIT failing) the error does not start a skip.
      // An ErrorResponse answered the message at the head of pending_: the client has not sent
      // its Sync yet when the free function says so.
      if (head.kind != Kind::kSimple && head.kind != Kind::kSync &&
          fail_pending_to_sync(pending_, conn.prepared, statements_))
        server_skipping_ = true;
      return false;
    case be::kReadyForQuery:
      if (head.kind == Kind::kSimple || head.kind == Kind::kSync) {
        pending_.pop_front();
      } else {
        log::error("bug_prepared_response_order",
                   {{"session", std::to_string(session_)}, {"type", "Z"}});
        pending_.clear();
      }
      return false;
    case be::kParseComplete:
      return pop_if(head.kind == Kind::kParse);
    case be::kCloseComplete:
      return pop_if(head.kind == Kind::kClose);
    case be::kBindComplete:
      return pop_if(head.kind == Kind::kBind);
    case be::kRowDescription:
    case be::kNoData:
      if (head.kind == Kind::kDescribe) pending_.pop_front();
      return false;
    case be::kEmptyQueryResponse:
      if (!head.dealloc_name.empty() &&
          (head.kind == Kind::kExecute || head.kind == Kind::kSimple)) {
        // The stand-in for a SQL DEALLOCATE of a tracked statement (client_message).
        PendingResponse answer{Kind::kSynthMessage, false, {}, {}};
        if (head.kind == Kind::kSimple && transaction_failed) {
          protocol::append_error_response(
              answer.message,
              {.severity = "ERROR",
               .sqlstate = "25P02",
               .message = "current transaction is aborted, commands ignored until end of "
                          "transaction block",
               .detail = {},
               .hint = {}});
        } else {
          statements_.erase(head.dealloc_name);
          protocol::append_command_complete(answer.message, "DEALLOCATE");
        }
        if (head.kind == Kind::kExecute) pending_.pop_front();
        pending_.push_front(std::move(answer));
        return true;
      }
      if (head.kind == Kind::kExecute) pending_.pop_front();
      return false;
    case be::kCommandComplete:
    case be::kPortalSuspended:
      if (head.kind == Kind::kExecute) pending_.pop_front();
      return false;
    default:
      return false;
  }
}

// Sends the answers the proxy makes up once every answer ahead of them has gone out.
void StatementRewriter::emit_synthetic(std::string& out) {
  while (!pending_.empty() && pending_.front().synthetic()) {
    if (pending_.front().kind == PendingResponse::Kind::kSynthParse) {
      protocol::append_parse_complete(out);
    } else if (pending_.front().kind == PendingResponse::Kind::kSynthMessage) {
      out += pending_.front().message;
    } else {
      protocol::append_close_complete(out);
    }
    pending_.pop_front();
  }
}

}  // namespace pgcutover::proxy
