// libFuzzer target: the proxy's TOML configuration (Config::parse, which pgcutover-proxy and
// pgcutoverctl both use), including backend URLs, verifiers and ${ENV} substitution. Any text
// must either load or throw ConfigError; every other exception, crash or hang is a finding.
// A ConfigError must never carry a secret: ${FUZZ_PASSWORD} expands to a known value, and when
// the input uses it only where secrets go (a password or token value, the password of a backend
// URL), no error message may contain that value. (Put into a non-secret key such as pool_mode,
// it is quoted like any other wrong value, which is right.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/password_source.h"

// Config::parse reads password_file / password_command sources while loading. A fuzzer must
// never run a command or open a file its random input names, so here every source answers
// "not read" (the parser's error path for a source that failed). The real reader is tested
// in tests/unit and tests/integration/test_backend_credentials.sh.
pgcutover::SecretRead pgcutover::read_password_source(const PasswordSource&) {
  return {.ok = false, .secret = {}, .error = "not read while fuzzing"};
}

using pgcutover::Config;
using pgcutover::ConfigError;

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
constexpr std::string_view kSecret = "fuzz-secret-Zq7";
constexpr std::string_view kPlaceholder = "${FUZZ_PASSWORD}";

bool ends_with_key_and_quote(std::string_view before, std::string_view key) {
  // <key> [spaces] = [spaces] "
  std::size_t i = before.size();
  if (i == 0 || before[i - 1] != '"') return false;
  --i;
  while (i > 0 && before[i - 1] == ' ') --i;
  if (i == 0 || before[i - 1] != '=') return false;
  --i;
  while (i > 0 && before[i - 1] == ' ') --i;
  return before.substr(0, i).ends_with(key);
}

bool in_url_password(std::string_view before) {
  // url = "postgres[ql]://<user>:  with no '/', '?', '@', '"' or ':' in <user>
  if (before.empty() || before.back() != ':') return false;
  const std::size_t scheme = before.rfind("://");
  if (scheme == std::string_view::npos) return false;
  const std::string_view user = before.substr(scheme + 3, before.size() - scheme - 4);
  if (user.find_first_of("/?@\":") != std::string_view::npos) return false;
  std::string_view head = before.substr(0, scheme);
  if (head.ends_with("postgresql")) {
    head.remove_suffix(10);
  } else if (head.ends_with("postgres")) {
    head.remove_suffix(8);
  } else {
    return false;
  }
  return ends_with_key_and_quote(head, "url");
}

// Every ${FUZZ_PASSWORD} in `text` stands where a secret belongs.
bool secrets_only_in_secret_places(std::string_view text) {
  if (text.find(kSecret) != std::string_view::npos) return false;  // written out, not a secret
  for (auto at = text.find(kPlaceholder); at != std::string_view::npos;
       at = text.find(kPlaceholder, at + 1)) {
    const std::string_view before = text.substr(0, at);
    if (!ends_with_key_and_quote(before, "password") && !ends_with_key_and_quote(before, "token") &&
        !in_url_password(before))
      return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("FUZZ_PASSWORD", std::string(kSecret).c_str(), 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const Config c = Config::parse(text, "/nonexistent/fuzz.toml");
    check(!c.path.empty());
  } catch (const ConfigError& e) {
    const std::string_view msg = e.what();
    check(!msg.empty());
    if (secrets_only_in_secret_places(text)) check(msg.find(kSecret) == std::string_view::npos);
  }
  return 0;
}
