// libFuzzer target for SCRAM and verifiers. The first byte picks what is fuzzed; the rest is
// split at the first '\n' into two messages:
//   0: ScramServer fed client-first, then client-final (fixed server nonce, so the fuzzer can
//      reach proof checking);
//   1: ScramClient fed server-first, then server-final (fixed client nonce; iteration cap 16
//      so PBKDF2 does not eat the run);
//   2: parse_scram_verifier, and format/parse round trip of whatever parses;
//   3: base64_decode, and encode/decode round trip.
// None may crash; a verifier or base64 value that parses must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/auth.h"
#include "protocol/base64.h"

using namespace pgcutover::protocol;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

const ScramVerifier& verifier() {
  // Built once: "pencil" with RFC 7677's salt, so seeds from the RFC exchange go deep.
  static const ScramVerifier v =
      make_scram_verifier("pencil", 4096, *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t nl = in.find('\n');
  const std::string_view first = in.substr(0, nl);
  const std::string_view second =
      nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  switch (data[0] % 4) {
    case 0: {
      ScramServer server(verifier());
      server.set_nonce_for_testing("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
      const ScramStep s1 = server.handle_client_first(first);
      check(s1.ok == s1.error.empty());
      const ScramStep s2 = server.handle_client_final(second);
      check(s2.ok == server.authenticated());
      if (s2.ok) check(s1.ok && s2.message.starts_with("v="));
      break;
    }
    case 1: {
      ScramClient client("pencil", 16);
      client.set_nonce_for_testing("rOprNGfwEbeRWgbNEkqO");
      check(client.client_first() == "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
      const ScramStep s1 = client.handle_server_first(first);
      if (s1.ok) check(s1.message.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO"));
      const ScramStep s2 = client.handle_server_final(second);
      if (s2.ok) check(s1.ok);
      break;
    }
    case 2: {
      if (const auto v = parse_scram_verifier(in)) {
        check(v->iterations > 0 && !v->salt.empty());
        check(format_scram_verifier(*v) == in);
      }
      break;
    }
    case 3: {
      if (const auto raw = base64_decode(in)) check(base64_encode(*raw) == in);
      break;
    }
  }
  return 0;
}
