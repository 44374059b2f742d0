// libFuzzer target: a client's byte stream after startup, as the proxy's session reads it.
// Each framed message goes to the one frontend parser its type byte selects (the dispatch the
// session does), so the fuzzer explores each parser with the type it really arrives under.
// Checks: a frame never claims bytes it was not given; a body a parser accepts re-encodes with
// the builders to the very same bytes (what the proxy forwards after a rewrite is what came in).
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

void dispatch(char type, Bytes body) {
  const std::string_view raw = as_chars(body);
  std::string w;
  switch (type) {
    case frontend::kQuery:
      if (auto q = parse_query(body)) {
        append_query(w, q->sql);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kParse:
      if (auto p = parse_parse(body)) {
        check(p->param_types.size() == 4u * p->param_count);
        append_parse(w, p->name, p->query, p->param_count, p->param_types);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kBind:
      if (auto b = parse_bind(body)) {
        append_bind(w, b->portal, b->statement, b->rest);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kDescribe:
      if (auto d = parse_describe(body)) {
        check(d->kind == 'S' || d->kind == 'P');
        append_describe(w, d->kind, d->name);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kClose:
      if (auto c = parse_close(body)) {
        check(c->kind == 'S' || c->kind == 'P');
        append_close(w, c->kind, c->name);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kExecute:
      if (auto e = parse_execute(body)) {
        append_execute(w, e->portal, e->max_rows);
        check(body_of(w) == raw);
      }
      break;
    case frontend::kPassword:
      // 'p' carries a password, a SASLInitialResponse or a SASLResponse: the session knows
      // which from its auth state; all three must be safe on any body.
      if (auto p = parse_password(body)) {
        append_password_message(w, *p);
        check(body_of(w) == raw);
      }
      if (auto s = parse_sasl_initial_response(body); s && !s->data.empty()) {
        std::string w2;
        append_sasl_initial_response(w2, s->mechanism, s->data);
        check(body_of(w2) == raw);
      }
      break;
    default:
      break;  // Sync, Flush, Terminate, Copy*: forwarded without looking at the body
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pgcutover::fuzz::for_each_frame(data, size, [](const Frame& f) { dispatch(f.type, f.body); });
  return 0;
}
