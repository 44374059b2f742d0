// libFuzzer target: a server's byte stream, as the proxy's server connection reads it (login,
// then relay). Each framed message goes to the backend parser its type byte selects. Checks: a
// frame never claims bytes it was not given; what a parser accepts is consistent with the body
// (re-encodes to the same bytes where a builder exists, fields within the body otherwise).
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"
#include "tests/fuzz/fuzz_stream.h"

using namespace pgcutover::protocol;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string body_of(const std::string& wire) {
  return wire.substr(kHeaderSize);
}

bool inside(std::string_view part, Bytes body) {
  const auto* b = reinterpret_cast<const char*>(body.data());
  return part.empty() || (part.data() >= b && part.data() + part.size() <= b + body.size());
}

void dispatch(char type, Bytes body) {
  const std::string_view raw = as_chars(body);
  std::string w;
  switch (type) {
    case backend::kAuthentication:
      if (auto a = parse_authentication(body)) {
        check(a->data.size() + 4 == body.size());
        if (a->code == AuthCode::kSasl) {
          if (auto mechs = parse_sasl_mechanisms(a->data)) {
            for (std::string_view m : *mechs) check(!m.empty() && inside(m, body));
          }
        }
      }
      break;
    case backend::kReadyForQuery:
      if (auto z = parse_ready_for_query(body)) {
        check(z->status == 'I' || z->status == 'T' || z->status == 'E');
        append_ready_for_query(w, z->status);
        check(body_of(w) == raw);
      }
      break;
    case backend::kParameterStatus:
      if (auto s = parse_parameter_status(body)) {
        append_parameter_status(w, s->name, s->value);
        check(body_of(w) == raw);
      }
      break;
    case backend::kBackendKeyData:
      if (auto k = parse_backend_key_data(body)) {
        append_backend_key_data(w, k->pid, k->key);
        check(body_of(w) == raw);
      }
      break;
    case backend::kCommandComplete:
      if (auto c = parse_command_complete(body)) {
        append_command_complete(w, c->tag);
        check(body_of(w) == raw);
      }
      break;
    case backend::kNotificationResponse:
      if (auto n = parse_notification(body)) {
        check(n->channel.size() + n->payload.size() + 6 == body.size());
        check(inside(n->channel, body) && inside(n->payload, body));
      }
      break;
    case backend::kErrorResponse:
    case backend::kNoticeResponse:
      if (auto e = parse_error_notice(body)) {
        for (const ErrorField& f : e->fields) check(f.code != 0 && inside(f.value, body));
        check(inside(e->sqlstate, body) && inside(e->message, body));
      }
      break;
    default:
      break;  // DataRow, RowDescription, Copy*, ...: relayed without looking at the body
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pgcutover::fuzz::for_each_frame(data, size, [](const Frame& f) { dispatch(f.type, f.body); });
  return 0;
}
