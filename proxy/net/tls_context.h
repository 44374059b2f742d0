// OpenSSL contexts, built once per configuration (and again on SIGHUP): one for clients
// connecting to the proxy, one per backend for the proxy connecting to it. TLS 1.2 minimum on
// both sides.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/config.h"

namespace pgcutover::proxy {

// The proxy's server certificate for client TLS. Returns nullptr and sets `error` when the
// cert/key cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const ClientTlsSettings& tls,
                                                                   std::string& error);

// The context to reach one backend: sslmode decides verification (require: encrypt only;
// verify-ca: chain against sslrootcert; verify-full: chain + host name, checked per connection
// by Stream::tls_connect). nullptr for sslmode=disable or on error (then `error` is set).
std::shared_ptr<boost::asio::ssl::context> make_backend_tls_context(const Backend& backend,
                                                                    std::string& error);

}  // namespace pgcutover::proxy
