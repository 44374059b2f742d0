// Encoders for the messages the proxy sends on its own: to clients (errors, ReadyForQuery,
// authentication requests, synthetic ParseComplete/CloseComplete) and to servers (startup,
// authentication responses, re-Parse of tracked statements). Each append_* adds one whole
// message to `out`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/framing.h"

namespace pgcutover::protocol {

// Appends one message field by field; end() patches the length. type 0 = untyped startup.
class MessageWriter {
 public:
  MessageWriter(std::string& out, char type);
  MessageWriter& int8(std::uint8_t v);
  MessageWriter& int16(std::int16_t v);
  MessageWriter& int32(std::int32_t v);
  MessageWriter& cstring(std::string_view s);  // s + '\0'
  MessageWriter& raw(std::string_view s);
  MessageWriter& raw(Bytes b);
  void end();

 private:
  std::string& out_;
  std::size_t start_;  // offset of the length field
};

// ---- to clients ----
struct ErrorSpec {
  std::string_view severity = "ERROR";  // ERROR, FATAL, PANIC (or WARNING/NOTICE for notices)
  std::string_view sqlstate;            // five characters, e.g. "28P01"
  std::string_view message;
  std::string_view detail;  // omitted when empty
  std::string_view hint;    // omitted when empty
};
void append_error_response(std::string& out, const ErrorSpec& e);
void append_notice_response(std::string& out, const ErrorSpec& e);
void append_ready_for_query(std::string& out, char status);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);
void append_backend_key_data(std::string& out, std::int32_t pid, std::int32_t key);
void append_auth_ok(std::string& out);
void append_auth_cleartext(std::string& out);
void append_auth_md5(std::string& out, const std::uint8_t salt[4]);
void append_auth_sasl(std::string& out, const std::vector<std::string_view>& mechanisms);
void append_auth_sasl_continue(std::string& out, std::string_view data);
void append_auth_sasl_final(std::string& out, std::string_view data);
void append_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       const std::vector<std::string_view>& unsupported);
void append_parse_complete(std::string& out);
void append_bind_complete(std::string& out);
void append_close_complete(std::string& out);
void append_command_complete(std::string& out, std::string_view tag);
void append_empty_query_response(std::string& out);

// ---- to servers ----
void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params);
void append_ssl_request(std::string& out);
void append_cancel_request(std::string& out, std::int32_t pid, std::int32_t key);
void append_password_message(std::string& out, std::string_view password);
void append_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data);
void append_sasl_response(std::string& out, std::string_view data);
void append_query(std::string& out, std::string_view sql);
void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::uint16_t param_count, Bytes param_types);
void append_bind(std::string& out, std::string_view portal, std::string_view statement, Bytes rest);
void append_describe(std::string& out, char kind, std::string_view name);
void append_close(std::string& out, char kind, std::string_view name);
void append_execute(std::string& out, std::string_view portal, std::int32_t max_rows);
void append_sync(std::string& out);
void append_flush(std::string& out);
void append_terminate(std::string& out);

}  // namespace pgcutover::protocol
