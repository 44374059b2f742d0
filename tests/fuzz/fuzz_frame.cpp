// libFuzzer target: decode_frame over a stream of typed messages, and every parse_* on each
// body. Beyond "no crash", it checks two properties: a frame never claims bytes it was not
// given, and a body a parser accepts re-encodes with the builders to the very same bytes.
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

// The body of the one message the builder appends to an empty string.
std::string body_of(const std::string& wire) {
  return wire.substr(kHeaderSize);
}

void parse_all(Bytes body) {
  const std::string_view raw = as_chars(body);
  if (auto q = parse_query(body)) {
    std::string w;
    append_query(w, q->sql);
    check(body_of(w) == raw);
  }
  if (auto p = parse_parse(body)) {
    std::string w;
    append_parse(w, p->name, p->query, p->param_count, p->param_types);
    check(body_of(w) == raw);
  }
  if (auto b = parse_bind(body)) {
    std::string w;
    append_bind(w, b->portal, b->statement, b->rest);
    check(body_of(w) == raw);
  }
  if (auto d = parse_describe(body)) {
    std::string w;
    append_describe(w, d->kind, d->name);
    check(body_of(w) == raw);
  }
  if (auto c = parse_close(body)) {
    std::string w;
    append_close(w, c->kind, c->name);
    check(body_of(w) == raw);
  }
  if (auto e = parse_execute(body)) {
    std::string w;
    append_execute(w, e->portal, e->max_rows);
    check(body_of(w) == raw);
  }
  if (auto z = parse_ready_for_query(body)) {
    std::string w;
    append_ready_for_query(w, z->status);
    check(body_of(w) == raw);
  }
  if (auto s = parse_parameter_status(body)) {
    std::string w;
    append_parameter_status(w, s->name, s->value);
    check(body_of(w) == raw);
  }
  if (auto k = parse_backend_key_data(body)) {
    std::string w;
    append_backend_key_data(w, k->pid, k->key);
    check(body_of(w) == raw);
  }
  if (auto c = parse_command_complete(body)) {
    std::string w;
    append_command_complete(w, c->tag);
    check(body_of(w) == raw);
  }
  if (auto p = parse_password(body)) {
    std::string w;
    append_password_message(w, *p);
    check(body_of(w) == raw);
  }
  if (auto s = parse_sasl_initial_response(body)) {
    // A -1 length and a 0 length both parse to empty data; only the non-empty case is exact.
    if (!s->data.empty()) {
      std::string w;
      append_sasl_initial_response(w, s->mechanism, s->data);
      check(body_of(w) == raw);
    }
  }
  if (auto a = parse_authentication(body)) {
    if (a->code == AuthCode::kSasl) check(parse_sasl_mechanisms(a->data).has_value());
  }
  if (auto n = parse_notification(body))
    check(n->channel.size() + n->payload.size() + 6 == body.size());
  if (auto e = parse_error_notice(body)) {
    for (const ErrorField& f : e->fields) check(f.code != 0);
  }
  (void)parse_sasl_mechanisms(body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A stream: frame messages one after another, as the proxy's read loop does.
  pgcutover::fuzz::for_each_frame(data, size, [](const Frame& f) { parse_all(f.body); });
  // And the raw input as one body, so the parsers see shapes framing would not produce.
  parse_all(Bytes(data, size));
  return 0;
}
