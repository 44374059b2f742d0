// The server half of ClientSession's relay: a coroutine that reads the assigned server connection
// and forwards to the client as bytes arrive (whole messages only for the few the proxy must
// look at), while it keeps the transaction state, the pending responses and the release point
// (ReadyForQuery 'I' with nothing outstanding) in step.
#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/pool/server_pool.h"
#include "proxy/session/client_pid_notice.h"
#include "proxy/session/client_session.h"
#include "proxy/session/read_only_error.h"

namespace pgcutover::proxy {
namespace be = protocol::backend;
namespace {

// Server messages the relay must read whole; everything else streams through by header.
bool inspected(char type) {
  switch (type) {
    case be::kReadyForQuery:
    case be::kParameterStatus:
    case be::kErrorResponse:
    case be::kCopyInResponse:
    case be::kCommandComplete:       // DISCARD ALL / DEALLOCATE ALL drop the server's statements
    case be::kNotificationResponse:  // the pid of the client's own session is rewritten
    case be::kNoticeResponse:        // a signal to a pid the proxy gave is explained
      return true;
    default:
      return false;
  }
}

// "cached plan must not change result type" (PostgreSQL's RevalidateCachedQuery): matched on
// SQLSTATE and routine, since the message text follows the server's lc_messages.
bool is_stale_plan_error(const protocol::ErrorNotice& e) {
  if (e.sqlstate != "0A000") return false;
  for (const auto& f : e.fields) {
    if (f.code == 'R') return f.value == "RevalidateCachedQuery";
  }
  return false;
}

}  // namespace

void ClientSession::on_server_message(char type, protocol::Bytes body, bool& release_point) {
  switch (type) {
    case be::kReadyForQuery: {
      auto z = protocol::parse_ready_for_query(body);
      TransactionTracker::Answer a = tx_.ready_for_query(z ? z->status : 'E');
      if (a.unexpected) log::warn("unexpected_ready_for_query", {{"session", std::to_string(id_)}});
      if (a.release_point) {
        release_point = true;
        if (a.was_busy || settings_->config.proxy.pool_mode == PoolMode::kTransaction) {
          stats().transactions_total.fetch_add(1, std::memory_order_relaxed);
        }
      }
      break;
    }
    case be::kParameterStatus: {
      // The client's own SET changed a reported setting: it now believes that value, and so
      // must every server connection it gets from now on.
      if (auto p = protocol::parse_parameter_status(body)) {
        std::string name(p->name);
        server_->params.reported[name] = std::string(p->value);
        server_->synced_for.clear();
        if (is_tracked_reported(name)) set_desired(name, std::string(p->value));
      }
      break;
    }
    case be::kErrorResponse: {
      auto e = protocol::parse_error_notice(body);
      stats().count_error(e ? e->sqlstate : std::string_view{});
      if (track_prepared_ && e && is_stale_plan_error(*e)) {
        // A shared statement's result columns changed under it (DDL). A driver's own cure,
        // Close + Parse, does not reach the shared server statement: this server connection
        // is closed instead of pooled, and its statements are prepared afresh elsewhere.
        server_->statements_stale = true;
      }
      break;
    }
    case be::kCopyInResponse:
      tx_.copy_in_started();
      break;
    default:
      break;
  }
}

awaitable<void> ClientSession::server_reader(std::shared_ptr<ClientSession> self,
                                             ServerConnection* conn) {
  std::shared_ptr<Stream> server = conn->stream;
  std::shared_ptr<Stream> client = client_;
  const std::size_t max_message = settings_->server_limits.max_message;
  std::size_t passthrough = 0;  // bytes of a streamed message still to forward (or drop)
  bool drop_passthrough = false;
  unsigned full_reads = 0;
  bool mine = true;
  while (mine) {
    protocol::Bytes data = conn->in.readable();
    std::size_t pos = 0;
    bool release_point = false;
    bool broken = false;
    // Server output goes to the client as it came unless the prepared-statement tracking
    // swallows or adds a message; then it is assembled in to_client_ (seg: first byte not yet
    // copied there).
    std::string& out = to_client_;
    out.clear();
    std::size_t seg = 0;
    auto cut = [&](std::size_t at) {
      out.append(reinterpret_cast<const char*>(data.data()) + seg, at - seg);
      seg = at;
    };
    auto synthetic_at_head = [&] { return tracking() && statements_->synthetic_at_head(); };
    while (pos < data.size()) {
      if (passthrough > 0) {
        std::size_t k = std::min(passthrough, data.size() - pos);
        if (drop_passthrough) cut(pos);
        pos += k;
        if (drop_passthrough) seg = pos;
        passthrough -= k;
        continue;
      }
      MessageHeader h;
      if (!read_header(data.subspan(pos), h)) break;
      if (h.length < 4 || h.length - 4 > max_message) {
        broken = true;
        break;
      }
      bool whole = data.size() - pos >= h.total();
      if (inspected(h.type) && !whole) break;
      protocol::Bytes body =
          whole ? data.subspan(pos + protocol::kHeaderSize, h.length - 4) : protocol::Bytes{};
      bool swallow = false;
      if (tracking()) {
        if (synthetic_at_head()) {
          cut(pos);
          statements_->emit_synthetic(out);
        }
        swallow =
            statements_->server_message(conn->statements, h.type, body, tx_.failed_transaction());
      }
      if (inspected(h.type)) on_server_message(h.type, body, release_point);
      if (!swallow && h.type == be::kErrorResponse && tx_.outstanding() == 0 &&
          !tx_.extended_pending() && cutover_snapshot_ && !host_.gate().is_open()) {
        // An idle server connection ended while paused (the fence's FATAL 57P01): not the
        // client's end, it moves with its snapshot (lost_while_paused).
        swallow = true;
        cut(pos);
      }
      if (!swallow && h.type == be::kErrorResponse && !read_only_route_ && !conn->read_only) {
        // Refused as read-only though the proxy asked for no read-only: the backend is fenced.
        if (auto e = protocol::parse_error_notice(body); e && e->sqlstate == "25006")
          host_.fenced_write_seen();
      }
      if (!swallow && h.type == be::kErrorResponse && (read_only_route_ || conn->read_only)) {
        // A refused write says why: the route is a replica (route_table.h) or the proxy is in
        // read-only mode for the migration (read_only_error.h). The SQLSTATE stays 25006.
        std::string rewritten;
        bool replaced = read_only_route_ ? rewrite_read_only_error(body, database_, rewritten)
                                         : rewrite_read_only_error(body, rewritten);
        if (replaced) {
          cut(pos);
          out += rewritten;
          swallow = true;  // the server's own copy is replaced
        }
      }
      if (!swallow && h.type == be::kNotificationResponse && whole) {
        // A notification sent by this client's own server session names that session's pid;
        // the client knows its session by the pid the proxy gave it in BackendKeyData, and
        // drivers compare the two to tell their own notifications from others'. Same message,
        // the client's pid.
        auto n = protocol::parse_notification(body);
        if (n && n->pid == conn->pid && conn->pid != cancel_key_.pid) {
          cut(pos);
          std::size_t at = out.size() + protocol::kHeaderSize;
          out.append(reinterpret_cast<const char*>(data.data()) + pos, h.total());
          auto pid = static_cast<std::uint32_t>(cancel_key_.pid);
          for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(pid >> (24 - 8 * i));
          swallow = true;  // the server's copy is replaced
        }
      }
      if (!swallow && h.type == be::kNoticeResponse && whole) {
        // pg_terminate_backend / pg_cancel_backend of the pid the proxy gave a client
        // (client_pid_notice.h): the server's warning, with what that pid is.
        std::string explained;
        if (explain_client_pid_notice(
                body, [&](std::int32_t pid) { return host_.cancels().issued_own_pid(pid); },
                explained)) {
          cut(pos);
          out += explained;
          swallow = true;
        }
      }
      if (!swallow && h.type == be::kReadyForQuery && divergences_due_ != 0) {
        // What the statement met that differs from direct, said before its end
        // (divergence_notice.h).
        cut(pos);
        tell_divergences(out, *conn);
      }
      std::size_t k = std::min(h.total(), data.size() - pos);
      if (swallow) cut(pos);
      pos += k;
      if (swallow) seg = pos;
      passthrough = h.total() - k;
      drop_passthrough = swallow && passthrough > 0;
      if (passthrough == 0 && synthetic_at_head()) {
        cut(pos);
        statements_->emit_synthetic(out);
      }
    }
    if (broken) {
      log::error("server_protocol_error",
                 {{"session", std::to_string(id_)}, {"server_id", std::to_string(conn->id)}});
      end_with({EndReason::kServerLost, "08P01", "invalid message from the database server"});
      server->close();
      client->cancel();
      break;
    }
    refresh_busy();
    if (pos > 0) {
      protocol::Bytes send = data.subspan(0, pos);
      if (seg > 0 || !out.empty()) {
        cut(pos);
        send = protocol::Bytes(reinterpret_cast<const std::uint8_t*>(out.data()), out.size());
      }
      if (!send.empty()) {
        if (held_since_ != std::chrono::steady_clock::time_point{}) answered_after_hold();
        auto [ec, n] = co_await client->write(asio::buffer(send.data(), send.size()));
        if (ec) {
          end_with({EndReason::kClientClosed, {}, {}});
          client->cancel();
          break;
        }
        stats().client_bytes_sent.fetch_add(n, std::memory_order_relaxed);
      }
      stats().server_bytes_received.fetch_add(pos, std::memory_order_relaxed);
      conn->in.consume(pos);
    }
    if (server_.get() != conn || ending_) break;
    bool at_release = release_point && tx_.settled() && passthrough == 0;
    if (at_release && writing_to_server_) {
      // The server answered before the relay saw its write complete. Reading the server now
      // would wait for nothing while the client, already answered, may wait for another
      // connection (pgbench -M prepared: one thread blocks in PQprepare for one client while
      // another of its clients holds this one). Wait for the write, then decide again.
      write_done_.get(shard_.executor()).expires_at(asio::steady_timer::time_point::max());
      co_await write_done_.get(shard_.executor()).async_wait(use_nothrow);
      if (server_.get() != conn || ending_) break;
      at_release = tx_.settled() && !writing_to_server_;
    }
    bool probed = false;
    if (at_release && state_effects_ != 0) {
      // The transaction may have left session state behind: ask the server before this
      // connection can go to another client (or be counted as movable).
      probed = true;
      if (!co_await probe_state(conn)) {
        end_with({EndReason::kServerLost, {}, {}});
        client->cancel();
        break;
      }
      if (server_.get() != conn || ending_) break;
      at_release = tx_.settled() && !writing_to_server_;
    }
    if (at_release) {
      // The client, answered, may now stay idle for hours: its parked relay gives up the read
      // buffer it kept through the transaction.
      if (parked_ && cin_.empty()) cin_.release();
      if (settings_->config.proxy.pool_mode == PoolMode::kTransaction && !pinned_) {
        detach(conn->in.empty());
        refresh_busy();
        arm_idle_timer();
        if (shutdown_requested_) terminate({EndReason::kShutdown, {}, {}});
        break;
      }
      if (shutdown_requested_) {
        terminate({EndReason::kShutdown, {}, {}});
        break;
      }
      arm_idle_timer();  // session mode (or pinned): idle between transactions from here
    }
    if (probed && !conn->in.empty()) continue;  // messages that came during the probe
    error_code ec;
    std::size_t n = 0;
    std::size_t room = 0;
    if (!snapshot_wanted_) {  // (asked while this coroutine was not reading: take it now)
      std::uint8_t* p = conn->in.prepare(4096, room);
      std::tie(ec, n) = co_await server->read_some(asio::buffer(p, room));
      if (server_.get() != conn || ending_) break;  // stopped on purpose (finish/detach)
    }
    if (snapshot_wanted_ && (!ec || ec == asio::error::operation_aborted)) {
      conn->in.commit(n);
      snapshot_wanted_ = false;
      if (!co_await snapshot_for_cutover(conn)) {
        end_with({EndReason::kServerLost, {}, {}});
        client->cancel();
        break;
      }
      if (server_.get() != conn || ending_) break;
      continue;
    }
    if (ec && cutover_snapshot_ && !host_.gate().is_open() && tx_.settled()) {
      lost_while_paused();
      break;
    }
    if (ec) {
      log::warn("server_connection_lost", {{"session", std::to_string(id_)},
                                           {"server_id", std::to_string(conn->id)},
                                           {"error", ec.message()}});
      end_with({EndReason::kServerLost, {}, {}});
      client->cancel();
      break;
    }
    conn->in.commit(n);
    // A large result streams through here without ever suspending when both sockets keep up
    // (TLS reads and writes the socket takes at once complete inline): every 16 full buffers,
    // the shard's other sessions get their turn.
    if (n == room && ++full_reads % 16 == 0) {
      co_await asio::post(shard_.executor(), use_nothrow);
      if (server_.get() != conn || ending_) break;
    }
  }
  if (--readers_ == 0) reader_done_.cancel();
  co_return;
}

}  // namespace pgcutover::proxy
