// A validated Config plus everything derived from it that is costly to build: TLS contexts,
// SCRAM verifiers for plaintext passwords, the backends' connection details. Built once at
// start and again on SIGHUP; immutable once built, shared by every shard (a session keeps the
// snapshot it started with).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/config.h"
#include "protocol/auth.h"
#include "protocol/framing.h"

namespace pgcutover::proxy {

class BackendSecret;  // proxy/settings/backend_secret.h

// Everything needed to open a server connection to one backend (and to cancel on it).
struct BackendEndpoint {
  Backend backend;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null for sslmode=disable
  // The live password (re-read from its password_file / password_command after a refused
  // login); null: backend.url.password.
  std::shared_ptr<BackendSecret> secret;
};

struct UserSecret {
  std::optional<protocol::ScramVerifier> scram;  // SCRAM-SHA-256
  std::string md5_or_plain;                      // md5: "md5..." hash or plaintext
};

struct Settings {
  Config config;
  std::shared_ptr<boost::asio::ssl::context> client_tls;  // null when client_tls = disable
  std::map<std::string, std::shared_ptr<const BackendEndpoint>, std::less<>> backends;
  std::map<std::string, UserSecret, std::less<>> users;
  protocol::Limits client_limits;
  protocol::Limits server_limits;

  // Builds everything; throws ConfigError naming the file and key on failure (a certificate
  // that cannot be loaded, a verifier that does not decode).
  static std::shared_ptr<const Settings> build(Config config);

  std::shared_ptr<const BackendEndpoint> endpoint(std::string_view name) const;
  // A client may name the database of any backend (the source's and the target's name both
  // keep working after a flip) or of a route; anything else does not exist, as on the server.
  bool serves_database(std::string_view name) const;
};

}  // namespace pgcutover::proxy
