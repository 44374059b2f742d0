// Reading a backend's password from where the configuration says it lives (config.h,
// PasswordSource): a file or a command. Heroku rotates its Postgres credentials and RDS users
// rotate through a secrets manager; both programs read the password the same way, at load and
// whenever a backend refuses it. No secret ever reaches an error message.
#pragma once

#include <string>

#include "common/config.h"

namespace pgcutover {

struct SecretRead {
  bool ok = false;
  std::string secret;  // never log
  std::string error;   // what went wrong, naming the file or the command's exit; no secret
};

// Reads the password once from its source, blocking (a command runs at most source.timeout,
// then its process group is killed). The trailing newline of a file or of a command's output
// is not part of the secret. kUrl answers not ok.
SecretRead read_password_source(const PasswordSource& source);

// "password_file /path" or "password_command": names the source in messages (never the
// command's text, which may carry a token).
std::string describe(const PasswordSource& source);

}  // namespace pgcutover
