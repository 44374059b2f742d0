// Session state that a pooled server connection must not share (transaction mode) or cannot
// take along to another backend (a flip): LISTEN, session advisory locks, temporary tables,
// WITH HOLD cursors, SQL-level PREPARE, SET ROLE, and settings changed with SET.
//
// Two halves (docs/session-state.md):
//  - classify_sql(): a lexer-level look at the client's SQL that says which kinds of state a
//    statement *may* create or release. It only decides whether the proxy asks the server;
//    it never decides alone (a statement can fail, a try-lock can return false, a DROP may or
//    may not drop a temporary table).
//  - SessionProbe: the question asked on the client's own server connection at the end of a
//    transaction that classify_sql() flagged. The server's answer is the truth the proxy pins
//    (or unpins) on, and what a move to a new backend replays.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/net/asio.h"
#include "proxy/pool/server_connection.h"
#include "proxy/pool/session_params.h"

namespace pgcutover::proxy {

// What a statement may do to the session (bit set).
enum SessionEffect : unsigned {
  kEffectNone = 0,
  kEffectSetting = 1u << 0,   // SET / RESET (not LOCAL), set_config(), SET SESSION CHARACTERISTICS
  kEffectRole = 1u << 1,      // SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE
  kEffectPrepare = 1u << 2,   // PREPARE / DEALLOCATE (SQL level; not PREPARE TRANSACTION)
  kEffectListen = 1u << 3,    // LISTEN / UNLISTEN
  kEffectAdvisory = 1u << 4,  // pg_advisory_lock & co (session variants, and unlocks)
  kEffectTemp = 1u << 5,      // CREATE TEMP ..., SELECT INTO TEMP, pg_temp., DROP (may release)
  kEffectCursor = 1u << 6,    // DECLARE ... WITH HOLD, CLOSE (may release)
  kEffectDiscard = 1u << 7,   // DISCARD (releases everything it names)
  // Not state: what the statement meets that differs through a pool (divergence_notice.h).
  kEffectListenStart = 1u << 8,   // LISTEN (not UNLISTEN)
  kEffectPreparedView = 1u << 9,  // reads pg_prepared_statements
};
// The effects that leave state in the session (the ones the probe asks about).
constexpr unsigned kStateEffects = (1u << 8) - 1;

// Effects of every statement in `sql` (one simple Query may hold many). Comments, string
// literals (standard, E'', U&'', dollar-quoted) and quoted identifiers are skipped, keywords
// are case-insensitive. Assumes standard_conforming_strings = on (PostgreSQL's default since
// 9.1): with it off a backslash-escaped quote in a plain literal can hide a statement.
unsigned classify_sql(std::string_view sql);

// The statements of `sql` split at top-level semicolons (comments and literals skipped),
// trimmed, empty ones dropped.
std::vector<std::string_view> split_statements(std::string_view sql);

// The statement of `sql` that is "PREPARE <name> ..." for the server-side (folded) `name`,
// or empty. pg_prepared_statements shows the whole query string a PREPARE came in.
std::string_view find_prepare_statement(std::string_view sql, std::string_view name);

// One named prepared statement of a server session (pg_prepared_statements).
struct PreparedOnServer {
  std::string name;
  std::string statement;
  std::string param_types;  // big-endian OIDs, as a Parse message carries them
  std::uint16_t param_count = 0;
  bool from_sql = false;  // PREPARE (true) or protocol Parse (false)
};

// The state of one server session as the server reports it.
struct SessionSnapshot {
  bool valid = false;   // the probe ran and was understood
  bool usable = false;  // the connection is idle again ('I'); false: close it
  std::int64_t listen = 0;
  std::int64_t advisory_locks = 0;
  std::int64_t temp_objects = 0;
  std::int64_t hold_cursors = 0;
  std::int64_t sql_prepared = 0;
  bool role_changed = false;  // current_user differs from session_user
  // Settings the session changed itself (pg_settings.source = 'session'), names and values in
  // the server's own form.
  ParamMap settings;
  std::vector<PreparedOnServer> prepared;  // only when asked for (a move)

  // State no other client may see: the connection stays with this client.
  bool pins() const;
  // State that cannot be recreated on another backend.
  bool unmovable() const;
  // "LISTEN, temp table" for reports and error messages (empty when nothing pins).
  std::string reasons() const;
};

// Asks the server about the session of `conn` (idle, at ReadyForQuery 'I'). One round trip.
// Asynchronous messages that arrive meanwhile (NotificationResponse, NoticeResponse,
// ParameterStatus) are appended, whole, to `async_out` for the client. With `with_prepared`
// the named prepared statements are listed too (for a move). Returns an invalid snapshot when
// the connection failed (then it must be closed).
awaitable<SessionSnapshot> probe_session(ServerConnection& conn, bool with_prepared,
                                         const protocol::Limits& limits, std::string& async_out);

// Messages that recreate `prepared` on a fresh server session: a Parse + Sync for each
// protocol-level statement (skipping those with `skip_protocol`), the PREPARE statement text
// for each SQL-level one. `ready_count` receives the number of ReadyForQuery they produce.
std::string build_prepared_replay(const std::vector<PreparedOnServer>& prepared, bool skip_protocol,
                                  int& ready_count);

// Sends `batch` on an idle connection and reads the answers up to `ready_count`
// ReadyForQuery. Errors do not stop it (each Sync ends one); returns how many failed, or -1
// when the connection is unusable.
awaitable<int> run_internal_batch(ServerConnection& conn, const std::string& batch, int ready_count,
                                  const protocol::Limits& limits);

// Settings a probe must not copy into the client's desired settings: tracked ones that this
// server reports follow ParameterStatus; role and session_authorization pin instead; and
// default_transaction_read_only while the proxy's read-only mode set it. A tracked setting
// the server does not report (search_path before PostgreSQL 18) is the client's like any
// other.
bool probe_skips_setting(std::string_view name, const ServerParams& server, bool proxy_read_only);

}  // namespace pgcutover::proxy
