// One client connection, as one coroutine that reads top to bottom: startup (SSL/GSSENC
// negotiation, CancelRequest, StartupMessage), authentication, then relay until the end, and
// one cleanup (finish) that turns the end status into the FATAL the client sees and decides
// whether the server connection may go back to the pool.
//
// The relay: this coroutine reads the client and forwards to the server; while a server
// connection is assigned, a second coroutine (server_reader) reads the server and forwards to
// the client. Whenever the relay has nothing to do but wait for the client's next bytes, it
// parks instead (park()): its coroutine ends, a wait handler on the socket holds the session,
// and the next bytes start the relay again (converse()). An idle client costs the session
// object and that handler, not a stack of coroutine frames (docs/benchmarks.md). In transaction
// mode the server connection goes back to the pool at ReadyForQuery 'I' when nothing is
// outstanding: every Query/FunctionCall/Sync forwarded expects one ReadyForQuery, and
// Parse/Bind/Describe/Execute/Close/Flush without a Sync keep the connection assigned (DESIGN-NOTES
// "Wire protocol").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "proxy/net/asio.h"
#include "proxy/net/byte_buffer.h"
#include "proxy/net/lazy_timer.h"
#include "proxy/pool/server_connection.h"
#include "proxy/pool/session_params.h"
#include "proxy/session/cancel_registry.h"
#include "proxy/session/end_status.h"
#include "proxy/session/prepared_statements.h"
#include "proxy/session/session_host.h"
#include "proxy/session/session_state.h"
#include "proxy/session/statement_rewriter.h"
#include "proxy/session/transaction_tracker.h"
#include "proxy/telemetry/stats.h"

namespace pgcutover::proxy {

class ServerPool;
struct Settings;

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(SessionHost& host, std::shared_ptr<Stream> client, std::uint64_t id);
  ~ClientSession();

  awaitable<void> run();
  std::uint64_t id() const { return id_; }
  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }

  // Shard thread only.
  void request_shutdown();        // end at the next transaction boundary
  void terminate(EndStatus why);  // end now
  void forward_cancel();          // a CancelRequest with this session's key arrived
  bool in_transaction() const;
  // Session state that pins this client to its server connection (transaction mode) or keeps
  // it from moving to another backend: what the server last said (proxy/session/session_state.h).
  bool pinned() const { return pinned_; }
  // "LISTEN, temp table" when the session holds state that cannot move to a new backend.
  std::string unmovable_reasons() const;
  // The proxy is paused and drained: record the session's state now (see
  // TrafficControl::snapshot_sessions). No-op for sessions without an idle server connection.
  void request_cutover_snapshot();
  // Connected to a read-only route (a replica): its transactions never hold up a flip.
  bool read_only_route() const { return read_only_route_; }

 private:
  awaitable<std::optional<EndStatus>> login();
  awaitable<std::optional<EndStatus>> startup(protocol::StartupPacket& packet);
  awaitable<std::optional<EndStatus>> authenticate(const protocol::StartupPacket& packet);
  // The conversation from login on (or from a parked wait: `readable`), to the end or to the
  // next park. nullopt from relay(): parked, nothing left to do until the client sends.
  awaitable<void> converse(bool readable);
  awaitable<std::optional<EndStatus>> relay(bool readable);
  bool may_park() const;
  void park();
  awaitable<void> finish(EndStatus status);

  // relay helpers
  void arm_idle_timer();
  awaitable<std::optional<EndStatus>> attach();
  awaitable<void> server_reader(std::shared_ptr<ClientSession> self, ServerConnection* conn);
  void on_server_message(char type, protocol::Bytes body, bool& release_point);
  void account_client_message(char type);
  // Named prepared statements in transaction mode (proxy/session/statement_rewriter.h).
  bool tracking() const { return track_prepared_ && server_ != nullptr; }
  void detach(bool reuse);
  // Session state (session_state.h): classify what the client sends, ask the server at the end
  // of a flagged transaction, pin or unpin, and move to a retargeted backend.
  void note_client_sql(char type, protocol::Bytes body);
  // A server was just bound: in session mode, is its pid the one the client was told?
  void note_server_pid();
  // Appends the notices of divergences_due_ (divergence_notice.h) for the client on `conn`.
  void tell_divergences(std::string& out, const ServerConnection& conn);
  awaitable<bool> probe_state(ServerConnection* conn);
  void apply_snapshot(ServerConnection& conn, SessionSnapshot snap);
  void set_pinned(bool on);
  awaitable<std::optional<EndStatus>> move_to_current_backend();
  awaitable<bool> snapshot_for_cutover(ServerConnection* conn);
  // The idle server connection died while paused (a fence): move with the snapshot instead.
  void lost_while_paused();
  void end_with(EndStatus status);
  awaitable<bool> write_client(const std::string& bytes);
  void refresh_busy();
  void set_state(ClientState s);

  SessionHost& host_;
  ShardContext& shard_;                       // host_.context(), read on every transaction
  std::shared_ptr<const Settings> settings_;  // the snapshot this session started with
  std::shared_ptr<Stream> client_;
  std::uint64_t id_;
  ClientState state_ = ClientState::kLogin;
  // Starts empty and grows on the first read (to 4 KiB for ordinary traffic): the default 16 KiB,
  // zero-filled and so resident at once, was three quarters of an idle client's memory
  // (10,000 idle clients: 230 MB RSS with it, 109 MB without; docs/benchmarks.md).
  ByteBuffer cin_{0};
  std::string user_;
  std::string database_;
  CancelRegistry::Key cancel_key_{};
  bool registered_ = false;
  ServerPool* pool_ = nullptr;
  bool read_only_route_ = false;  // database_ is a read-only route (a replica)
  // What the client believes its settings are (shared with alike clients until it changes).
  std::shared_ptr<DesiredSettings> desired_;
  bool desired_changed_ = false;  // desired_->key is out of date
  const ParamMap& desired() const { return desired_->params; }
  ParamMap& edit_desired();  // an own copy first when shared
  void set_desired(const std::string& name, const std::string& value);
  const std::string& desired_key();
  awaitable<std::optional<EndStatus>> sync_settings(std::unique_ptr<ServerConnection>& conn);

  // relay state
  std::unique_ptr<ServerConnection> server_;
  TransactionTracker tx_;  // where the conversation with server_ stands
  bool writing_to_server_ = false;
  bool busy_ = false;
  // Passed the gate and waiting for a server connection (attach()): in flight for the drain.
  bool acquiring_ = false;
  bool shutdown_requested_ = false;
  // Held by a closed gate since then (epoch of the clock: not held). The first byte written
  // to the client afterwards ends the wait the pause cost it (proxy/telemetry/held_waits.h).
  std::chrono::steady_clock::time_point held_since_{};
  // When the gate let this held client go: the debug log splits its wait into the closed gate
  // and what came after (a server connection, the first answer).
  std::chrono::steady_clock::time_point released_at_{};
  void answered_after_hold();
  bool skip_until_sync_ = false;  // an error was reported; discard to the next Sync
  bool parked_ = false;           // no relay coroutine: a wait handler holds the session

  // Transaction mode, max_prepared_statements > 0: the client's named statements, rewritten
  // onto the server connection's shared ones.
  // The rewriter is made on first use (a server connection, or an answer without one) and
  // dropped at the end of a transaction when it keeps nothing: an idle client that has no
  // statement carries none.
  bool track_prepared_ = false;
  std::unique_ptr<StatementRewriter> statements_;
  StatementRewriter& rewriter();
  std::string to_server_;              // a batch with rewritten messages
  std::string to_client_;              // server output with swallowed or made-up messages
  std::unique_ptr<EndStatus> ending_;  // set once: how the session ends
  // Session state: effects seen since the last probe, the server's last answer, pinning.
  unsigned state_effects_ = 0;
  // What differs from direct (divergence_notice.h): due to be told, and told already.
  unsigned divergences_due_ = 0;
  unsigned divergences_told_ = 0;
  std::unique_ptr<SessionSnapshot> snapshot_;  // the last probe's, while it pins or cannot move
  bool pinned_ = false;
  bool probing_ = false;      // the server reader is asking the server; the relay must not write
  ParamMap startup_desired_;  // settings from the startup packet (what RESET goes back to)
  std::string replay_;        // a move: prepared statements to recreate on the next server
  int replay_ready_ = 0;      // ReadyForQuery messages replay_ produces
  bool snapshot_wanted_ = false;  // the reader's read was cancelled to take a snapshot
  // Taken while paused; cleared at the next transaction.
  std::unique_ptr<SessionSnapshot> cutover_snapshot_;
  int readers_ = 0;
  LazyTimer reader_done_;
  LazyTimer idle_timer_;
  LazyTimer write_done_;  // cancelled when a write to the server completes
  LazyTimer probe_done_;  // cancelled when a probe ends
};

}  // namespace pgcutover::proxy
