#include "proxy/session/session_state.h"

#include <cctype>
#include <charconv>

#include "common/log.h"
#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/net/message_io.h"

namespace pgcutover::proxy {
namespace {

// ---- lexer: just enough of PostgreSQL's scanner (scan.l) to find keywords ----

enum class TokKind { kWord, kQuoted, kSemicolon, kOther };
struct Tok {
  TokKind kind;
  std::string_view text;  // always a view into the lexed text; kQuoted: between the quotes
};

bool word_start(unsigned char c) {
  return std::isalpha(c) || c == '_' || c >= 0x80;
}
bool word_char(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}
bool istarts(std::string_view a, std::string_view prefix) {
  return a.size() >= prefix.size() && iequals(a.substr(0, prefix.size()), prefix);
}
bool icontains(std::string_view a, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= a.size(); ++i) {
    if (iequals(a.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

// Skips a '...' literal starting at s[i] == '\''; returns the index after it. `backslash`:
// E'' strings, where \' does not end the literal.
std::size_t skip_literal(std::string_view s, std::size_t i, char quote, bool backslash) {
  ++i;
  while (i < s.size()) {
    char c = s[i];
    if (backslash && c == '\\') {
      i += 2;
      continue;
    }
    if (c == quote) {
      if (i + 1 < s.size() && s[i + 1] == quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return s.size();  // unterminated: the server will refuse it; nothing after it counts
}

// Calls f(Tok) for each token of `s`.
template <class F>
void lex(std::string_view s, F&& f) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      while (i < n && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      // Block comments nest in PostgreSQL (unlike the SQL standard).
      int depth = 0;
      while (i < n) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      std::size_t end = skip_literal(s, i, '\'', false);
      f(Tok{TokKind::kOther, s.substr(i, end - i)});
      i = end;
    } else if (c == '"') {
      std::size_t end = skip_literal(s, i, '"', false);
      std::size_t inner_end = end > i + 1 && s[end - 1] == '"' ? end - 1 : end;
      f(Tok{TokKind::kQuoted, s.substr(i + 1, inner_end - i - 1)});
      i = end;
    } else if (c == '$' && i + 1 < n && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      std::size_t start = i++;  // $1: a parameter
      while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      f(Tok{TokKind::kOther, s.substr(start, i - start)});
    } else if (c == '$') {
      // Dollar quote: $$ or $tag$ ... the same delimiter.
      std::size_t j = i + 1;
      if (j < n && word_start(static_cast<unsigned char>(s[j]))) {
        while (j < n && word_char(static_cast<unsigned char>(s[j])) && s[j] != '$') ++j;
      }
      if (j < n && s[j] == '$') {
        std::string_view delim = s.substr(i, j - i + 1);
        std::size_t close = s.find(delim, j + 1);
        std::size_t end = close == std::string_view::npos ? n : close + delim.size();
        f(Tok{TokKind::kOther, s.substr(i, end - i)});
        i = end;
      } else {
        f(Tok{TokKind::kOther, s.substr(i, 1)});
        ++i;
      }
    } else if (word_start(c)) {
      std::size_t j = i + 1;
      while (j < n && word_char(static_cast<unsigned char>(s[j]))) ++j;
      std::string_view w = s.substr(i, j - i);
      if (j < n && s[j] == '\'' && (iequals(w, "e"))) {
        std::size_t end = skip_literal(s, j, '\'', true);  // E'...\'...'
        f(Tok{TokKind::kOther, s.substr(i, end - i)});
        i = end;
      } else if (j + 1 < n && s[j] == '&' && (s[j + 1] == '\'' || s[j + 1] == '"') &&
                 iequals(w, "u")) {
        // U&'...' and U&"...": the escapes inside never hide a quote.
        char q = s[j + 1];
        std::size_t end = skip_literal(s, j + 1, q, false);
        f(Tok{q == '"' ? TokKind::kQuoted : TokKind::kOther, s.substr(i, end - i)});
        i = end;
      } else {
        f(Tok{TokKind::kWord, w});
        i = j;
      }
    } else if (std::isdigit(c)) {
      std::size_t start = i;
      while (i < n && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      f(Tok{TokKind::kOther, s.substr(start, i - start)});
    } else if (c == ';') {
      f(Tok{TokKind::kSemicolon, s.substr(i, 1)});
      ++i;
    } else {
      f(Tok{TokKind::kOther, s.substr(i, 1)});
      ++i;
    }
  }
}

// One statement's words in order (a quoted identifier is kept as a word that matches no
// keyword, so "WITH "x" HOLD" is not "WITH HOLD").
unsigned classify_statement(const std::vector<Tok>& words) {
  if (words.empty()) return kEffectNone;
  auto w = [&](std::size_t i) -> std::string_view {
    return i < words.size() && words[i].kind == TokKind::kWord ? words[i].text : std::string_view{};
  };
  unsigned mask = kEffectNone;
  std::string_view w0 = w(0);
  if (iequals(w0, "set")) {
    std::string_view w1 = w(1);
    if (iequals(w1, "local") || iequals(w1, "transaction") || iequals(w1, "constraints")) {
      // Transaction-scoped: gone at the end of the transaction.
    } else if (iequals(w1, "role") || iequals(w1, "session_authorization") ||
               (iequals(w1, "session") &&
                (iequals(w(2), "authorization") || iequals(w(2), "role")))) {
      mask |= kEffectRole;
    } else {
      mask |= kEffectSetting;  // SET x, SET SESSION x, SET TIME ZONE, SET SESSION CHARACTERISTICS
    }
  } else if (iequals(w0, "reset")) {
    std::string_view w1 = w(1);
    if (iequals(w1, "all")) {
      mask |= kEffectSetting | kEffectRole;
    } else if (iequals(w1, "role") || iequals(w1, "session") ||
               iequals(w1, "session_authorization")) {
      mask |= kEffectRole;
    } else {
      mask |= kEffectSetting;
    }
  } else if (iequals(w0, "prepare")) {
    if (!iequals(w(1), "transaction")) mask |= kEffectPrepare;
  } else if (iequals(w0, "deallocate")) {
    mask |= kEffectPrepare;
  } else if (iequals(w0, "listen")) {
    mask |= kEffectListen | kEffectListenStart;
  } else if (iequals(w0, "unlisten")) {
    mask |= kEffectListen;
  } else if (iequals(w0, "discard")) {
    mask |= kEffectDiscard;
  } else if (iequals(w0, "declare")) {
    for (std::size_t i = 1; i + 1 < words.size(); ++i) {
      if (iequals(w(i), "with") && iequals(w(i + 1), "hold")) mask |= kEffectCursor;
    }
  } else if (iequals(w0, "close")) {
    mask |= kEffectCursor;
  } else if (iequals(w0, "drop")) {
    mask |= kEffectTemp;  // may drop a temporary table: ask whether any is left
  }
  // Anywhere in the statement: CREATE [GLOBAL|LOCAL] TEMP[ORARY] ..., SELECT ... INTO TEMP,
  // pg_temp.x, advisory-lock functions, set_config().
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view x = w(i);
    if (x.empty()) continue;
    if (iequals(x, "create") || iequals(x, "into")) {
      // CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP ..., INTO [GLOBAL | LOCAL] TEMP ...
      std::size_t k = i + 1;
      while (iequals(w(k), "or") || iequals(w(k), "replace") || iequals(w(k), "global") ||
             iequals(w(k), "local"))
        ++k;
      if (iequals(w(k), "temp") || iequals(w(k), "temporary")) mask |= kEffectTemp;
    } else if (iequals(x, "pg_temp")) {
      mask |= kEffectTemp;
    } else if ((istarts(x, "pg_advisory_") || istarts(x, "pg_try_advisory_")) &&
               !icontains(x, "_xact_")) {
      mask |= kEffectAdvisory;
    } else if (iequals(x, "set_config")) {
      mask |= kEffectSetting;
    } else if (iequals(x, "pg_prepared_statements")) {
      mask |= kEffectPreparedView;
    }
  }
  return mask;
}

std::string unquote_ident(std::string_view q) {
  std::string out;
  for (std::size_t i = 0; i < q.size(); ++i) {
    out += q[i];
    if (q[i] == '"' && i + 1 < q.size() && q[i + 1] == '"') ++i;
  }
  return out;
}

// ---- the probe ----

// Settings first: the SET LOCAL after it (which keeps the client's own statement_timeout or
// lock_timeout from cancelling the rest) would show up as a session setting itself. One Query
// of several statements is one implicit transaction, so SET LOCAL ends with it.
constexpr std::string_view kProbeCounts =
    "SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session';"
    "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0;"
    "SELECT (SELECT count(*) FROM pg_catalog.pg_listening_channels()),"
    " (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_catalog.pg_backend_pid()),"
    " (SELECT count(*) FROM pg_catalog.pg_class"
    " WHERE relnamespace = pg_catalog.pg_my_temp_schema()),"
    " (SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable),"
    " (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql),"
    " current_user <> session_user;";
constexpr std::string_view kProbePrepared =
    "SELECT name, statement, parameter_types::pg_catalog.oid[]::text, from_sql"
    " FROM pg_catalog.pg_prepared_statements;";

// DataRow ('D') columns; nullopt for SQL NULL. False when malformed.
bool parse_data_row(std::string_view body, std::vector<std::optional<std::string_view>>& cols) {
  cols.clear();
  auto u16 = [&](std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(body[at]) << 8) |
                                      static_cast<unsigned char>(body[at + 1]));
  };
  if (body.size() < 2) return false;
  std::size_t n = u16(0);
  std::size_t pos = 2;
  for (std::size_t i = 0; i < n; ++i) {
    if (body.size() - pos < 4) return false;
    std::int32_t len =
        static_cast<std::int32_t>((static_cast<std::uint32_t>(u16(pos)) << 16) | u16(pos + 2));
    pos += 4;
    if (len < 0) {
      cols.emplace_back(std::nullopt);
      continue;
    }
    if (body.size() - pos < static_cast<std::size_t>(len)) return false;
    cols.emplace_back(body.substr(pos, static_cast<std::size_t>(len)));
    pos += static_cast<std::size_t>(len);
  }
  return true;
}

std::int64_t to_int(std::optional<std::string_view> v) {
  std::int64_t out = 0;
  if (v) std::from_chars(v->data(), v->data() + v->size(), out);
  return out;
}

// "{23,25}" -> big-endian OIDs.
std::string oid_array_to_wire(std::string_view text, std::uint16_t& count) {
  std::string out;
  count = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::uint32_t oid = 0;
    auto r = std::from_chars(text.data() + i, text.data() + text.size(), oid);
    i = static_cast<std::size_t>(r.ptr - text.data());
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((oid >> shift) & 0xff);
    ++count;
  }
  return out;
}

void append_raw_message(std::string& out, char type, std::string_view body) {
  out += type;
  std::uint32_t len = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((len >> shift) & 0xff);
  out += body;
}

}  // namespace

unsigned classify_sql(std::string_view sql) {
  unsigned mask = kEffectNone;
  std::vector<Tok> words;
  lex(sql, [&](const Tok& t) {
    if (t.kind == TokKind::kSemicolon) {
      mask |= classify_statement(words);
      words.clear();
    } else if (t.kind == TokKind::kWord || t.kind == TokKind::kQuoted) {
      words.push_back(t);
    }
  });
  mask |= classify_statement(words);
  return mask;
}

std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  const char* first = nullptr;
  const char* last = nullptr;
  auto flush = [&] {
    if (first != nullptr) out.emplace_back(first, static_cast<std::size_t>(last - first));
    first = last = nullptr;
  };
  lex(sql, [&](const Tok& t) {
    if (t.kind == TokKind::kSemicolon) {
      flush();
      return;
    }
    // Quoted identifiers are reported without their quotes: widen back to the quote.
    const char* b = t.text.data();
    const char* e = t.text.data() + t.text.size();
    if (t.kind == TokKind::kQuoted) {
      if (b > sql.data() && b[-1] == '"') --b;
      if (e < sql.data() + sql.size() && *e == '"') ++e;
    }
    if (first == nullptr) first = b;
    if (e > last) last = e;
  });
  flush();
  return out;
}

std::string_view find_prepare_statement(std::string_view sql, std::string_view name) {
  for (std::string_view stmt : split_statements(sql)) {
    std::vector<Tok> toks;
    lex(stmt, [&](const Tok& t) {
      if (toks.size() < 2) toks.push_back(t);
    });
    if (toks.size() < 2 || toks[0].kind != TokKind::kWord || !iequals(toks[0].text, "prepare"))
      continue;
    if (toks[1].kind == TokKind::kWord) {
      std::string folded(toks[1].text);
      for (char& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (folded == name) return stmt;
    } else if (toks[1].kind == TokKind::kQuoted && unquote_ident(toks[1].text) == name) {
      return stmt;
    }
  }
  return {};
}

bool SessionSnapshot::pins() const {
  return listen > 0 || advisory_locks > 0 || temp_objects > 0 || hold_cursors > 0 ||
         sql_prepared > 0 || role_changed;
}

bool SessionSnapshot::unmovable() const {
  return listen > 0 || advisory_locks > 0 || temp_objects > 0 || hold_cursors > 0 || role_changed;
}

std::string SessionSnapshot::reasons() const {
  std::string out;
  auto add = [&](bool on, const char* what) {
    if (!on) return;
    if (!out.empty()) out += ", ";
    out += what;
  };
  add(listen > 0, "LISTEN");
  add(advisory_locks > 0, "advisory lock");
  add(temp_objects > 0, "temp table");
  add(hold_cursors > 0, "WITH HOLD cursor");
  add(role_changed, "SET ROLE");
  add(sql_prepared > 0, "SQL PREPARE");
  return out;
}

bool probe_skips_setting(std::string_view name, const ServerParams& server, bool proxy_read_only) {
  if (iequals(name, "role") || iequals(name, "session_authorization")) return true;
  if (iequals(name, "default_transaction_read_only")) return proxy_read_only;
  return is_tracked_reported(name) && server.reported.count(std::string(name)) != 0;
}

awaitable<SessionSnapshot> probe_session(ServerConnection& conn, bool with_prepared,
                                         const protocol::Limits& limits, std::string& async_out) {
  namespace be = protocol::backend;
  SessionSnapshot snap;
  std::string out;
  std::string sql(kProbeCounts);
  if (with_prepared) sql += kProbePrepared;
  protocol::append_query(out, sql);
  if (auto [ec, n] = co_await conn.stream->write(asio::buffer(out)); ec) co_return snap;
  bool failed = false;
  std::vector<std::optional<std::string_view>> cols;
  for (;;) {
    ReadMessage m = co_await read_message(*conn.stream, conn.in, limits);
    if (!m.ok()) co_return SessionSnapshot{};
    switch (m.type) {
      case be::kDataRow:
        if (!parse_data_row(m.body, cols)) {
          failed = true;
        } else if (cols.size() == 6) {
          snap.listen = to_int(cols[0]);
          snap.advisory_locks = to_int(cols[1]);
          snap.temp_objects = to_int(cols[2]);
          snap.hold_cursors = to_int(cols[3]);
          snap.sql_prepared = to_int(cols[4]);
          snap.role_changed = cols[5] && *cols[5] == "t";
        } else if (cols.size() == 2 && cols[0] && cols[1]) {
          snap.settings[std::string(*cols[0])] = std::string(*cols[1]);
        } else if (cols.size() == 4 && cols[0] && cols[1] && cols[2]) {
          PreparedOnServer p;
          p.name = std::string(*cols[0]);
          p.statement = std::string(*cols[1]);
          p.param_types = oid_array_to_wire(*cols[2], p.param_count);
          p.from_sql = cols[3] && *cols[3] == "t";
          snap.prepared.push_back(std::move(p));
        }
        break;
      case be::kErrorResponse: {
        auto e = protocol::parse_error_notice(protocol::as_bytes(m.body));
        log::warn("session_probe_failed",
                  {{"sqlstate", e ? std::string(e->sqlstate) : std::string("?????")},
                   {"error", e ? std::string(e->message) : std::string("malformed")}});
        failed = true;
        break;
      }
      case be::kNotificationResponse:
      case be::kNoticeResponse:
        append_raw_message(async_out, m.type, m.body);
        break;
      case be::kParameterStatus:
        if (auto p = protocol::parse_parameter_status(protocol::as_bytes(m.body))) {
          conn.params.reported[std::string(p->name)] = std::string(p->value);
        }
        break;
      case be::kReadyForQuery: {
        auto z = protocol::parse_ready_for_query(protocol::as_bytes(m.body));
        if (!z || z->status != 'I') co_return SessionSnapshot{};
        snap.usable = true;  // bytes after it (a notification) stay in conn.in for the relay
        snap.valid = !failed && snap.usable;
        co_return snap;
      }
      case be::kCopyInResponse:
      case be::kCopyOutResponse:
      case be::kCopyBothResponse:
        co_return SessionSnapshot{};
      default:
        break;  // RowDescription, CommandComplete
    }
  }
}

std::string build_prepared_replay(const std::vector<PreparedOnServer>& prepared, bool skip_protocol,
                                  int& ready_count) {
  std::string out;
  ready_count = 0;
  for (const PreparedOnServer& p : prepared) {
    if (p.from_sql) {
      std::string_view stmt = find_prepare_statement(p.statement, p.name);
      if (stmt.empty()) {
        log::warn("prepared_replay_skipped",
                  {{"statement", p.name}, {"reason", "PREPARE text not found"}});
        continue;
      }
      protocol::append_query(out, stmt);
    } else {
      if (skip_protocol) continue;
      protocol::append_parse(out, p.name, p.statement, p.param_count,
                             protocol::as_bytes(p.param_types));
      protocol::append_sync(out);
    }
    ++ready_count;
  }
  return out;
}

awaitable<int> run_internal_batch(ServerConnection& conn, const std::string& batch, int ready_count,
                                  const protocol::Limits& limits) {
  namespace be = protocol::backend;
  conn.synced_for.clear();
  if (auto [ec, n] = co_await conn.stream->write(asio::buffer(batch)); ec) co_return -1;
  int errors = 0;
  while (ready_count > 0) {
    ReadMessage m = co_await read_message(*conn.stream, conn.in, limits);
    if (!m.ok()) co_return -1;
    if (m.type == be::kErrorResponse) {
      auto e = protocol::parse_error_notice(protocol::as_bytes(m.body));
      log::warn("replay_statement_failed",
                {{"sqlstate", e ? std::string(e->sqlstate) : std::string("?????")},
                 {"error", e ? std::string(e->message) : std::string("malformed")}});
      ++errors;
    } else if (m.type == be::kParameterStatus) {
      if (auto p = protocol::parse_parameter_status(protocol::as_bytes(m.body)))
        conn.params.reported[std::string(p->name)] = std::string(p->value);
    } else if (m.type == be::kReadyForQuery) {
      auto z = protocol::parse_ready_for_query(protocol::as_bytes(m.body));
      if (!z || z->status != 'I') co_return -1;
      --ready_count;
    } else if (m.type == be::kCopyInResponse || m.type == be::kCopyOutResponse ||
               m.type == be::kCopyBothResponse) {
      co_return -1;
    }
  }
  co_return errors;
}

}  // namespace pgcutover::proxy
