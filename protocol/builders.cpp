// Encoders for the messages the proxy writes itself. Layouts: "Frontend/Backend Protocol:
// Message Formats" in the PostgreSQL docs. Integers go out in network byte order.
#include "protocol/builders.h"

#include "protocol/messages.h"
#include "protocol/wire.h"

namespace pgcutover::protocol {

MessageWriter::MessageWriter(std::string& out, char type) : out_(out) {
  if (type != 0) out_.push_back(type);
  start_ = out_.size();
  out_.append(4, '\0');  // length, patched by end()
}

MessageWriter& MessageWriter::int8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

MessageWriter& MessageWriter::int16(std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u));
  return *this;
}

MessageWriter& MessageWriter::int32(std::int32_t v) {
  char b[4];
  store_be32(b, static_cast<std::uint32_t>(v));
  out_.append(b, 4);
  return *this;
}

MessageWriter& MessageWriter::cstring(std::string_view s) {
  // A protocol string cannot hold a NUL. Cut at the first one rather than let a value that
  // came from a peer (a user name echoed in an error) end the field early and smuggle in
  // fields or messages of its own.
  out_.append(s.substr(0, s.find('\0')));
  out_.push_back('\0');
  return *this;
}

MessageWriter& MessageWriter::raw(std::string_view s) {
  out_.append(s);
  return *this;
}

MessageWriter& MessageWriter::raw(Bytes b) {
  return raw(as_chars(b));
}

void MessageWriter::end() {
  // The length counts itself and everything after it, never the type byte.
  store_be32(out_.data() + start_, static_cast<std::uint32_t>(out_.size() - start_));
}

// ---- to clients ----

namespace {

void append_error_fields(std::string& out, char type, const ErrorSpec& e) {
  MessageWriter w(out, type);
  // 'S' may be localized, 'V' never is (9.6+); we do not localize, so both carry the same text.
  w.int8('S').cstring(e.severity);
  w.int8('V').cstring(e.severity);
  w.int8('C').cstring(e.sqlstate);
  w.int8('M').cstring(e.message);
  if (!e.detail.empty()) w.int8('D').cstring(e.detail);
  if (!e.hint.empty()) w.int8('H').cstring(e.hint);
  w.int8(0);
  w.end();
}

void append_empty(std::string& out, char type) {
  MessageWriter(out, type).end();
}

void append_auth(std::string& out, AuthCode code, std::string_view data) {
  MessageWriter(out, backend::kAuthentication)
      .int32(static_cast<std::int32_t>(code))
      .raw(data)
      .end();
}

}  // namespace

void append_error_response(std::string& out, const ErrorSpec& e) {
  append_error_fields(out, backend::kErrorResponse, e);
}

void append_notice_response(std::string& out, const ErrorSpec& e) {
  append_error_fields(out, backend::kNoticeResponse, e);
}

void append_ready_for_query(std::string& out, char status) {
  MessageWriter(out, backend::kReadyForQuery).int8(static_cast<std::uint8_t>(status)).end();
}

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter(out, backend::kParameterStatus).cstring(name).cstring(value).end();
}

void append_backend_key_data(std::string& out, std::int32_t pid, std::int32_t key) {
  MessageWriter(out, backend::kBackendKeyData).int32(pid).int32(key).end();
}

void append_auth_ok(std::string& out) {
  append_auth(out, AuthCode::kOk, {});
}

void append_auth_cleartext(std::string& out) {
  append_auth(out, AuthCode::kCleartextPassword, {});
}

void append_auth_md5(std::string& out, const std::uint8_t salt[4]) {
  append_auth(out, AuthCode::kMd5Password, as_chars(Bytes(salt, 4)));
}

void append_auth_sasl(std::string& out, const std::vector<std::string_view>& mechanisms) {
  MessageWriter w(out, backend::kAuthentication);
  w.int32(static_cast<std::int32_t>(AuthCode::kSasl));
  for (std::string_view m : mechanisms) w.cstring(m);
  w.int8(0);  // the list ends with an empty name
  w.end();
}

void append_auth_sasl_continue(std::string& out, std::string_view data) {
  append_auth(out, AuthCode::kSaslContinue, data);
}

void append_auth_sasl_final(std::string& out, std::string_view data) {
  append_auth(out, AuthCode::kSaslFinal, data);
}

void append_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       const std::vector<std::string_view>& unsupported) {
  MessageWriter w(out, backend::kNegotiateProtocolVersion);
  w.int32(newest_minor).int32(static_cast<std::int32_t>(unsupported.size()));
  for (std::string_view opt : unsupported) w.cstring(opt);
  w.end();
}

void append_parse_complete(std::string& out) {
  append_empty(out, backend::kParseComplete);
}
void append_bind_complete(std::string& out) {
  append_empty(out, backend::kBindComplete);
}
void append_close_complete(std::string& out) {
  append_empty(out, backend::kCloseComplete);
}

void append_command_complete(std::string& out, std::string_view tag) {
  MessageWriter(out, backend::kCommandComplete).cstring(tag).end();
}

void append_empty_query_response(std::string& out) {
  append_empty(out, backend::kEmptyQueryResponse);
}

// ---- to servers ----

void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params) {
  MessageWriter w(out, 0);
  w.int32(static_cast<std::int32_t>(kProtocol30));
  for (const auto& [name, value] : params) w.cstring(name).cstring(value);
  w.int8(0);
  w.end();
}

void append_ssl_request(std::string& out) {
  MessageWriter(out, 0).int32(static_cast<std::int32_t>(kSslRequestCode)).end();
}

void append_cancel_request(std::string& out, std::int32_t pid, std::int32_t key) {
  MessageWriter(out, 0)
      .int32(static_cast<std::int32_t>(kCancelRequestCode))
      .int32(pid)
      .int32(key)
      .end();
}

void append_password_message(std::string& out, std::string_view password) {
  MessageWriter(out, frontend::kPassword).cstring(password).end();
}

void append_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data) {
  MessageWriter(out, frontend::kPassword)
      .cstring(mechanism)
      .int32(static_cast<std::int32_t>(data.size()))
      .raw(data)
      .end();
}

void append_sasl_response(std::string& out, std::string_view data) {
  // SASLResponse carries the mechanism data bare: no length field, no terminator.
  MessageWriter(out, frontend::kPassword).raw(data).end();
}

void append_query(std::string& out, std::string_view sql) {
  MessageWriter(out, frontend::kQuery).cstring(sql).end();
}

void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::uint16_t param_count, Bytes param_types) {
  MessageWriter(out, frontend::kParse)
      .cstring(name)
      .cstring(query)
      .int16(static_cast<std::int16_t>(param_count))
      .raw(param_types)
      .end();
}

void append_bind(std::string& out, std::string_view portal, std::string_view statement,
                 Bytes rest) {
  MessageWriter(out, frontend::kBind).cstring(portal).cstring(statement).raw(rest).end();
}

void append_describe(std::string& out, char kind, std::string_view name) {
  MessageWriter(out, frontend::kDescribe).int8(static_cast<std::uint8_t>(kind)).cstring(name).end();
}

void append_close(std::string& out, char kind, std::string_view name) {
  MessageWriter(out, frontend::kClose).int8(static_cast<std::uint8_t>(kind)).cstring(name).end();
}

void append_execute(std::string& out, std::string_view portal, std::int32_t max_rows) {
  MessageWriter(out, frontend::kExecute).cstring(portal).int32(max_rows).end();
}

void append_sync(std::string& out) {
  append_empty(out, frontend::kSync);
}
void append_flush(std::string& out) {
  append_empty(out, frontend::kFlush);
}
void append_terminate(std::string& out) {
  append_empty(out, frontend::kTerminate);
}

}  // namespace pgcutover::protocol
