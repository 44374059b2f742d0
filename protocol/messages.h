// Views of the message bodies the proxy must look at or rewrite. Each parse_* takes the body
// of a framed message (see framing.h) and returns std::nullopt when it is malformed (a
// string without its terminator, a count that overruns the body): never a crash.
// String views point into the body; copy them if they must outlive the buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "protocol/framing.h"

namespace pgcutover::protocol {

// Message type bytes (protocol 3.0). Frontend and backend share some letters.
namespace frontend {
inline constexpr char kQuery = 'Q', kParse = 'P', kBind = 'B', kDescribe = 'D', kExecute = 'E',
                      kClose = 'C', kSync = 'S', kFlush = 'H', kTerminate = 'X', kCopyData = 'd',
                      kCopyDone = 'c', kCopyFail = 'f', kFunctionCall = 'F',
                      kPassword = 'p';  // also SASLInitialResponse / SASLResponse
}  // namespace frontend
namespace backend {
inline constexpr char kAuthentication = 'R', kBackendKeyData = 'K', kParameterStatus = 'S',
                      kReadyForQuery = 'Z', kErrorResponse = 'E', kNoticeResponse = 'N',
                      kNotificationResponse = 'A', kParseComplete = '1', kBindComplete = '2',
                      kCloseComplete = '3', kNoData = 'n', kPortalSuspended = 's',
                      kRowDescription = 'T', kDataRow = 'D', kCommandComplete = 'C',
                      kEmptyQueryResponse = 'I', kParameterDescription = 't', kCopyInResponse = 'G',
                      kCopyOutResponse = 'H', kCopyBothResponse = 'W', kCopyData = 'd',
                      kCopyDone = 'c', kFunctionCallResponse = 'V', kNegotiateProtocolVersion = 'v';
}  // namespace backend

// Authentication request codes (backend 'R').
enum class AuthCode : std::int32_t {
  kOk = 0,
  kCleartextPassword = 3,
  kMd5Password = 5,
  kSasl = 10,
  kSaslContinue = 11,
  kSaslFinal = 12,
};

// ---- frontend ----
struct Query {
  std::string_view sql;
};
struct Parse {
  std::string_view name;  // "" = the unnamed statement
  std::string_view query;
  std::uint16_t param_count = 0;
  Bytes param_types;  // param_count big-endian int32 OIDs, as sent
};
struct Bind {
  std::string_view portal;
  std::string_view statement;
  Bytes rest;  // formats, parameter values, result formats: forwarded untouched
};
struct Describe {
  char kind = 0;  // 'S' statement or 'P' portal
  std::string_view name;
};
struct Close {
  char kind = 0;  // 'S' or 'P'
  std::string_view name;
};
struct Execute {
  std::string_view portal;
  std::int32_t max_rows = 0;
};

std::optional<Query> parse_query(Bytes body);
std::optional<Parse> parse_parse(Bytes body);
std::optional<Bind> parse_bind(Bytes body);
std::optional<Describe> parse_describe(Bytes body);
std::optional<Close> parse_close(Bytes body);
std::optional<Execute> parse_execute(Bytes body);

// ---- backend ----
struct ReadyForQuery {
  char status = 'I';  // 'I' idle, 'T' in transaction, 'E' failed transaction
};
struct ParameterStatus {
  std::string_view name;
  std::string_view value;
};
struct BackendKeyData {
  std::int32_t pid = 0;
  std::int32_t key = 0;
};
struct Authentication {
  AuthCode code = AuthCode::kOk;
  Bytes data;  // salt (md5), mechanism list (SASL), SASL data (continue/final)
};
struct NotificationResponse {
  std::int32_t pid = 0;
  std::string_view channel;
  std::string_view payload;
};
struct CommandComplete {
  std::string_view tag;
};
// ErrorResponse / NoticeResponse: every field kept, the common ones by name.
struct ErrorField {
  char code = 0;  // 'S' severity, 'V' non-localized severity, 'C' SQLSTATE, 'M', 'D', 'H', ...
  std::string_view value;
};
struct ErrorNotice {
  std::vector<ErrorField> fields;
  std::string_view severity;  // 'V' when present, else 'S'
  std::string_view sqlstate;  // 'C'
  std::string_view message;   // 'M'
  std::string_view detail;    // 'D'
  std::string_view hint;      // 'H'
};

std::optional<ReadyForQuery> parse_ready_for_query(Bytes body);
std::optional<ParameterStatus> parse_parameter_status(Bytes body);
std::optional<BackendKeyData> parse_backend_key_data(Bytes body);
std::optional<Authentication> parse_authentication(Bytes body);
std::optional<NotificationResponse> parse_notification(Bytes body);
std::optional<CommandComplete> parse_command_complete(Bytes body);
// DataRow: one value per column, nullopt for SQL NULL (text or binary, as the server sent it).
std::optional<std::vector<std::optional<std::string_view>>> parse_data_row(Bytes body);
std::optional<ErrorNotice> parse_error_notice(Bytes body);
// SASL mechanism names from an AuthenticationSASL body's data.
std::optional<std::vector<std::string_view>> parse_sasl_mechanisms(Bytes data);
// SASLInitialResponse ('p' body in SASL context): mechanism + initial client response.
struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;  // empty when the length is -1
};
std::optional<SaslInitialResponse> parse_sasl_initial_response(Bytes body);
// PasswordMessage ('p' body in cleartext/md5 context).
std::optional<std::string_view> parse_password(Bytes body);

}  // namespace pgcutover::protocol
