// Parsers for message bodies framed by decode_frame. Every read is bounds-checked; a body
// with trailing bytes is malformed, as PostgreSQL's pq_getmsgend() treats it.
// Layouts: "Frontend/Backend Protocol: Message Formats" in the PostgreSQL docs.
#include "protocol/messages.h"

#include <cstring>

#include "protocol/wire.h"

namespace pgcutover::protocol {
namespace {

// Bounds-checked cursor over one body. A failed read latches `ok_ = false` so a parser can
// read every field and check once at the end.
class BodyReader {
 public:
  explicit BodyReader(Bytes b) : b_(b) {}

  std::string_view cstring() {
    if (!ok_ || pos_ >= b_.size()) return fail();
    const auto* end =
        static_cast<const std::uint8_t*>(std::memchr(b_.data() + pos_, 0, b_.size() - pos_));
    if (end == nullptr) return fail();
    const std::size_t len = static_cast<std::size_t>(end - (b_.data() + pos_));
    std::string_view s = as_chars(b_.subspan(pos_, len));
    pos_ += len + 1;
    return s;
  }
  std::uint8_t int8() {
    if (!ok_ || remaining() < 1) return fail(), 0;
    return b_[pos_++];
  }
  std::int16_t int16() {
    if (!ok_ || remaining() < 2) return fail(), 0;
    const auto v = static_cast<std::int16_t>(load_be16(b_.data() + pos_));
    pos_ += 2;
    return v;
  }
  std::int32_t int32() {
    if (!ok_ || remaining() < 4) return fail(), 0;
    const auto v = static_cast<std::int32_t>(load_be32(b_.data() + pos_));
    pos_ += 4;
    return v;
  }
  Bytes bytes(std::size_t n) {
    if (!ok_ || remaining() < n) return fail(), Bytes{};
    Bytes v = b_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  Bytes rest() { return ok_ ? bytes(remaining()) : Bytes{}; }

  std::size_t remaining() const { return b_.size() - pos_; }
  bool ok() const { return ok_; }
  // Every field read, nothing left over.
  bool done() const { return ok_ && pos_ == b_.size(); }

 private:
  std::string_view fail() {
    ok_ = false;
    return {};
  }
  Bytes b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// Bind's tail after the two names: format codes, parameter values, result format codes. The
// proxy forwards it untouched, but checks every count against the body so that a lying count
// is caught here and not by whoever reads the values later.
bool valid_bind_tail(Bytes rest) {
  BodyReader r(rest);
  const std::int16_t nformats = r.int16();
  if (nformats < 0) return false;
  r.bytes(static_cast<std::size_t>(nformats) * 2);
  const std::int16_t nparams = r.int16();
  if (nparams < 0) return false;
  for (int i = 0; i < nparams && r.ok(); ++i) {
    const std::int32_t len = r.int32();
    if (len < -1) return false;  // -1 is NULL; nothing else below zero is defined
    if (len > 0) r.bytes(static_cast<std::size_t>(len));
  }
  // A format-count mismatch ("zero, one, or equal to the number of parameters") is left for
  // the server to answer with an ordinary ERROR: it does not break framing.
  const std::int16_t nresults = r.int16();
  if (nresults < 0) return false;
  r.bytes(static_cast<std::size_t>(nresults) * 2);
  return r.done();
}

bool statement_or_portal(char kind) {
  return kind == 'S' || kind == 'P';
}

}  // namespace

// ---- frontend ----

std::optional<Query> parse_query(Bytes body) {
  BodyReader r(body);
  Query q{r.cstring()};
  if (!r.done()) return std::nullopt;
  return q;
}

std::optional<Parse> parse_parse(Bytes body) {
  BodyReader r(body);
  Parse p;
  p.name = r.cstring();
  p.query = r.cstring();
  p.param_count = static_cast<std::uint16_t>(r.int16());
  p.param_types = r.bytes(std::size_t{p.param_count} * 4);
  if (!r.done()) return std::nullopt;
  return p;
}

std::optional<Bind> parse_bind(Bytes body) {
  BodyReader r(body);
  Bind b;
  b.portal = r.cstring();
  b.statement = r.cstring();
  b.rest = r.rest();
  if (!r.done() || !valid_bind_tail(b.rest)) return std::nullopt;
  return b;
}

// Describe and Close share one layout: Byte1 'S' or 'P', then the statement or portal name.
template <class KindAndName>
std::optional<KindAndName> parse_kind_and_name(Bytes body) {
  BodyReader r(body);
  KindAndName m;
  m.kind = static_cast<char>(r.int8());
  m.name = r.cstring();
  if (!r.done() || !statement_or_portal(m.kind)) return std::nullopt;
  return m;
}

std::optional<Describe> parse_describe(Bytes body) {
  return parse_kind_and_name<Describe>(body);
}

std::optional<Close> parse_close(Bytes body) {
  return parse_kind_and_name<Close>(body);
}

std::optional<Execute> parse_execute(Bytes body) {
  BodyReader r(body);
  Execute e;
  e.portal = r.cstring();
  e.max_rows = r.int32();
  if (!r.done()) return std::nullopt;
  return e;
}

std::optional<SaslInitialResponse> parse_sasl_initial_response(Bytes body) {
  BodyReader r(body);
  SaslInitialResponse s;
  s.mechanism = r.cstring();
  const std::int32_t len = r.int32();
  if (len < -1) return std::nullopt;
  if (len > 0) s.data = as_chars(r.bytes(static_cast<std::size_t>(len)));
  if (!r.done()) return std::nullopt;
  return s;
}

std::optional<std::string_view> parse_password(Bytes body) {
  BodyReader r(body);
  std::string_view pw = r.cstring();
  if (!r.done()) return std::nullopt;
  return pw;
}

// ---- backend ----

std::optional<ReadyForQuery> parse_ready_for_query(Bytes body) {
  BodyReader r(body);
  ReadyForQuery z{static_cast<char>(r.int8())};
  if (!r.done()) return std::nullopt;
  // The pool decision hangs on this byte; an unknown status must not read as "idle".
  if (z.status != 'I' && z.status != 'T' && z.status != 'E') return std::nullopt;
  return z;
}

std::optional<ParameterStatus> parse_parameter_status(Bytes body) {
  BodyReader r(body);
  ParameterStatus s;
  s.name = r.cstring();
  s.value = r.cstring();
  if (!r.done()) return std::nullopt;
  return s;
}

std::optional<BackendKeyData> parse_backend_key_data(Bytes body) {
  BodyReader r(body);
  BackendKeyData k;
  k.pid = r.int32();
  k.key = r.int32();
  // Protocol 3.0 keys are 4 bytes (3.2 allows longer ones; we never negotiate 3.2).
  if (!r.done()) return std::nullopt;
  return k;
}

std::optional<Authentication> parse_authentication(Bytes body) {
  BodyReader r(body);
  Authentication a;
  a.code = static_cast<AuthCode>(r.int32());
  a.data = r.rest();
  if (!r.done()) return std::nullopt;
  // Sizes fixed by the protocol are checked; codes we do not implement (Kerberos, GSS, SSPI)
  // are passed through for the caller to refuse by name.
  switch (a.code) {
    case AuthCode::kOk:
    case AuthCode::kCleartextPassword:
      if (!a.data.empty()) return std::nullopt;
      break;
    case AuthCode::kMd5Password:
      if (a.data.size() != 4) return std::nullopt;
      break;
    case AuthCode::kSasl:
      if (!parse_sasl_mechanisms(a.data)) return std::nullopt;
      break;
    default:
      break;
  }
  return a;
}

std::optional<std::vector<std::string_view>> parse_sasl_mechanisms(Bytes data) {
  BodyReader r(data);
  std::vector<std::string_view> mechs;
  for (;;) {
    std::string_view m = r.cstring();
    if (!r.ok()) return std::nullopt;
    if (m.empty()) break;  // the list ends with an empty name
    mechs.push_back(m);
  }
  if (!r.done()) return std::nullopt;
  return mechs;
}

std::optional<NotificationResponse> parse_notification(Bytes body) {
  BodyReader r(body);
  NotificationResponse n;
  n.pid = r.int32();
  n.channel = r.cstring();
  n.payload = r.cstring();
  if (!r.done()) return std::nullopt;
  return n;
}

std::optional<CommandComplete> parse_command_complete(Bytes body) {
  BodyReader r(body);
  CommandComplete c{r.cstring()};
  if (!r.done()) return std::nullopt;
  return c;
}

std::optional<std::vector<std::optional<std::string_view>>> parse_data_row(Bytes body) {
  BodyReader r(body);
  const std::int16_t ncols = r.int16();
  if (ncols < 0) return std::nullopt;
  std::vector<std::optional<std::string_view>> row;
  row.reserve(static_cast<std::size_t>(ncols));
  for (std::int16_t i = 0; i < ncols && r.ok(); ++i) {
    const std::int32_t len = r.int32();
    if (len == -1) {
      row.emplace_back(std::nullopt);
    } else if (len < 0) {
      return std::nullopt;
    } else {
      row.emplace_back(as_chars(r.bytes(static_cast<std::size_t>(len))));
    }
  }
  if (!r.done()) return std::nullopt;
  return row;
}

std::optional<ErrorNotice> parse_error_notice(Bytes body) {
  BodyReader r(body);
  ErrorNotice e;
  std::string_view s_severity;
  for (;;) {
    const char code = static_cast<char>(r.int8());
    if (!r.ok()) return std::nullopt;
    if (code == 0) break;  // "A code of zero indicates end of message"
    const std::string_view value = r.cstring();
    if (!r.ok()) return std::nullopt;
    e.fields.push_back({code, value});
    switch (code) {
      case 'S':
        s_severity = value;
        break;
      case 'V':
        e.severity = value;
        break;
      case 'C':
        e.sqlstate = value;
        break;
      case 'M':
        e.message = value;
        break;
      case 'D':
        e.detail = value;
        break;
      case 'H':
        e.hint = value;
        break;
      default:
        break;  // unknown codes are kept and otherwise ignored, as the docs require
    }
  }
  if (!r.done()) return std::nullopt;
  // 'V' (9.6+) is never localized; 'S' may be, so prefer 'V'.
  if (e.severity.empty()) e.severity = s_severity;
  return e;
}

}  // namespace pgcutover::protocol
