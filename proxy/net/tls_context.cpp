#include "proxy/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace pgcutover::proxy {
namespace ssl = boost::asio::ssl;

namespace {
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}
}  // namespace

std::shared_ptr<ssl::context> make_client_tls_context(const ClientTlsSettings& tls,
                                                      std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // No session tickets and no session cache, as PostgreSQL itself: libpq never resumes a
  // session, so a ticket is CPU spent at every handshake and a cached session memory kept per
  // client for nothing.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(native, tls.cert_file.c_str()) != 1) {
    error = "cannot load TLS certificate " + tls.cert_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(native, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load TLS key " + tls.key_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "TLS key " + tls.key_file + " does not match certificate " + tls.cert_file;
    return nullptr;
  }
  return ctx;
}

std::shared_ptr<ssl::context> make_backend_tls_context(const Backend& backend, std::string& error) {
  if (backend.sslmode == SslMode::kDisable) return nullptr;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (backend.sslmode == SslMode::kRequire) {
    // libpq's sslmode=require: encryption without authentication of the server (Heroku).
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  if (SSL_CTX_load_verify_locations(native, backend.sslrootcert.c_str(), nullptr) != 1) {
    error = "backends." + backend.name + ".sslrootcert: cannot load " + backend.sslrootcert + ": " +
            openssl_error();
    return nullptr;
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

}  // namespace pgcutover::proxy
