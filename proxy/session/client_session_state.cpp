// ClientSession's session-state handling (proxy/session/session_state.h), apart from the relay so
// the relay reads straight through: what the client's SQL may do, asking the server at the end of
// a flagged transaction, pinning, and moving a session to a retargeted backend.
#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/pool/server_pool.h"
#include "proxy/session/client_session.h"
#include "proxy/session/divergence_notice.h"
#include "proxy/settings/settings.h"

namespace pgcutover::proxy {
namespace fe = protocol::frontend;

void ClientSession::note_client_sql(char type, protocol::Bytes body) {
  unsigned effects = 0;
  if (type == fe::kQuery) {
    // Query: one NUL-terminated string (several statements possibly).
    auto text = std::string_view(reinterpret_cast<const char*>(body.data()), body.size());
    if (auto nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
    effects = classify_sql(text);
  } else if (type == fe::kParse) {
    if (auto p = protocol::parse_parse(body)) effects = classify_sql(p->query);
  }
  state_effects_ |= effects & kStateEffects;
  // Clients known by the proxy's pids (transaction mode, read-only routes) cannot match other
  // clients' notifications to them; only transaction mode shares prepared statements.
  unsigned due = 0;
  bool proxy_pids = settings_->config.proxy.pool_mode == PoolMode::kTransaction || read_only_route_;
  if (proxy_pids && (effects & kEffectListenStart) != 0) due |= kDivergeOthersNotificationPid;
  if (track_prepared_ && (effects & kEffectPreparedView) != 0)
    due |= kDivergePreparedStatementsView;
  divergences_due_ |= due & ~divergences_told_;
}

void ClientSession::note_server_pid() {
  if (registered_ && settings_->config.proxy.pool_mode == PoolMode::kSession && !read_only_route_ &&
      server_->pid != cancel_key_.pid) {
    // Session mode: the server found after a busy login, or the one a flip moved the session
    // to, is not the pid the client was told. Said at its next statement (divergence_notice.h).
    divergences_told_ &= ~kDivergeLoginPid;
    divergences_due_ |= kDivergeLoginPid;
  }
}

void ClientSession::tell_divergences(std::string& out, const ServerConnection& conn) {
  auto cmm = desired().find("client_min_messages");
  append_divergence_notices(
      out, divergences_due_, cancel_key_.pid, conn.pid,
      cmm != desired().end() ? std::string_view(cmm->second) : std::string_view{});
  divergences_told_ |= divergences_due_;
  divergences_due_ = 0;
}

std::string ClientSession::unmovable_reasons() const {
  if (!server_ || !snapshot_ || !snapshot_->unmovable()) return {};
  return snapshot_->reasons();
}

void ClientSession::set_pinned(bool on) {
  if (on == pinned_) return;
  pinned_ = on;
  stats().pinned_sessions.fetch_add(on ? 1 : -1, std::memory_order_relaxed);
  log::info(on ? "session_pinned" : "session_unpinned",
            {{"session", std::to_string(id_)}, {"reasons", snapshot_ ? snapshot_->reasons() : ""}});
}

// Takes the server's answer as the truth about this session.
void ClientSession::apply_snapshot(ServerConnection& conn, SessionSnapshot snap) {
  // Settings the client changed with SET follow it to every server connection it gets (and
  // to a new backend); the reported ones already follow ParameterStatus.
  for (const auto& [name, value] : snap.settings) {
    if (probe_skips_setting(name, conn.params, conn.read_only)) continue;
    conn.params.overrides[name] = value;
    set_desired(name, value);
  }
  // Set before (by the client or by the proxy's sync) and gone now: RESET or DISCARD ALL.
  for (auto it = conn.params.overrides.begin(); it != conn.params.overrides.end();) {
    if (snap.settings.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (auto s = startup_desired_.find(it->first); s != startup_desired_.end()) {
      set_desired(it->first, s->second);
    } else if (desired().count(it->first) != 0) {
      edit_desired().erase(it->first);
    }
    it = conn.params.overrides.erase(it);
  }
  conn.synced_for.clear();
  snap.settings.clear();
  snap.prepared.clear();
  // Transaction mode: anything another client must not see pins. Session mode: the server is
  // this client's anyway; what counts is what could not move to another backend.
  bool transaction_mode = settings_->config.proxy.pool_mode == PoolMode::kTransaction;
  bool pin = transaction_mode ? snap.pins() : snap.unmovable();
  // Kept only while it holds something (the reasons reports give): most sessions hold nothing.
  if (snap.pins() || snap.unmovable()) {
    if (!snapshot_) snapshot_ = std::make_unique<SessionSnapshot>();
    *snapshot_ = std::move(snap);
  } else {
    snapshot_.reset();
  }
  set_pinned(pin);
  refresh_busy();
}

awaitable<bool> ClientSession::probe_state(ServerConnection* conn) {
  probing_ = true;
  refresh_busy();
  std::string async;
  SessionSnapshot snap = co_await probe_session(*conn, false, settings_->server_limits, async);
  probing_ = false;
  probe_done_.cancel();
  refresh_busy();
  if (!async.empty() && !ending_) {
    // Notifications and notices that arrived while the proxy asked: the client's, in order.
    if (!co_await write_client(async)) {
      end_with({EndReason::kClientClosed, {}, {}});
      co_return true;
    }
  }
  if (!snap.valid) {
    // The server refused the question (the client's own statement_timeout, say) or the
    // connection is gone (the caller closes it). Not knowing is not "nothing": the client
    // stays pinned (transaction mode) and is asked again after its next transaction.
    if (snap.usable && settings_->config.proxy.pool_mode == PoolMode::kTransaction) {
      set_pinned(true);
      refresh_busy();
    }
    co_return snap.usable;
  }
  state_effects_ = 0;
  apply_snapshot(*conn, std::move(snap));
  co_return true;
}

awaitable<std::optional<EndStatus>> ClientSession::move_to_current_backend() {
  // Stop the server reader first: the old connection's answers are the proxy's from here.
  std::unique_ptr<ServerConnection> old = std::move(server_);
  old->stream->cancel();
  while (readers_ > 0) {
    reader_done_.get(shard_.executor()).expires_at(asio::steady_timer::time_point::max());
    co_await reader_done_.get(shard_.executor()).async_wait(use_nothrow);
  }
  refresh_busy();
  std::string async;
  SessionSnapshot snap = co_await probe_session(*old, true, settings_->server_limits, async);
  if (!async.empty() && !co_await write_client(async))
    co_return EndStatus{EndReason::kClientClosed, {}, {}};
  if (!snap.valid || snap.unmovable()) {
    pool_->release(std::move(old), ServerPool::Return::kClose);
    std::string why = snap.valid ? "holds " + snap.reasons() + ", which cannot move"
                                 : "state could not be read from the old server";
    log::warn("session_not_moved", {{"session", std::to_string(id_)}, {"reason", why}});
    set_pinned(false);
    co_return EndStatus{EndReason::kShutdown, "57P01",
                        "terminating connection: the database moved to a new server (pgcutover "
                        "flip) and this session " +
                            why + "; reconnect"};
  }
  // Settings go along through the normal sync in attach(); prepared statements are replayed
  // there before the client's next message. Transaction mode re-prepares its protocol-level
  // statements lazily (prepared_statements.h), so only SQL-level ones are replayed for it.
  int ready = 0;
  replay_ = build_prepared_replay(snap.prepared, track_prepared_, ready);
  replay_ready_ = ready;
  std::vector<PreparedOnServer> none;
  snap.prepared.swap(none);
  apply_snapshot(*old, std::move(snap));
  pool_->release(std::move(old), ServerPool::Return::kClose);
  if (statements_) statements_->reset_conversation();
  tx_.reset();
  co_return std::nullopt;
}

void ClientSession::request_cutover_snapshot() {
  bool keeps_server = settings_->config.proxy.pool_mode == PoolMode::kSession || pinned_;
  if (!server_ || !keeps_server || probing_ || in_transaction() || readers_ == 0) return;
  snapshot_wanted_ = true;
  probing_ = true;  // counted in flight until the snapshot is taken
  refresh_busy();
  server_->stream->cancel();  // wakes the server reader, which takes it
}

awaitable<bool> ClientSession::snapshot_for_cutover(ServerConnection* conn) {
  std::string async;
  SessionSnapshot snap = co_await probe_session(*conn, true, settings_->server_limits, async);
  probing_ = false;
  probe_done_.cancel();
  refresh_busy();
  if (!async.empty() && !ending_ && !co_await write_client(async)) {
    end_with({EndReason::kClientClosed, {}, {}});
    co_return true;
  }
  if (!snap.valid) co_return snap.usable;
  cutover_snapshot_ = std::make_unique<SessionSnapshot>(snap);
  apply_snapshot(*conn, std::move(snap));
  co_return true;
}

void ClientSession::lost_while_paused() {
  if (cutover_snapshot_->unmovable()) {
    end_with({EndReason::kShutdown, "57P01",
              "terminating connection: the database is moving to a new server (pgcutover "
              "flip) and this session held " +
                  cutover_snapshot_->reasons() + ", which cannot move; reconnect"});
    client_->cancel();
    return;
  }
  int ready = 0;
  replay_ = build_prepared_replay(cutover_snapshot_->prepared, track_prepared_, ready);
  replay_ready_ = ready;
  log::info("server_lost_while_paused",
            {{"session", std::to_string(id_)},
             {"action", "the session continues on a new server connection with its state"}});
  detach(false);
  refresh_busy();
}

}  // namespace pgcutover::proxy
