// A small HTTP/1.1 client for the proxies' admin API (status, pause/flip/resume...): one request
// per connection, bearer token, a hard deadline on resolve + connect + TLS + write + read
// together. http:// or https:// (the certificate verified against the proxy's ca_file, or the
// system's trust store, and the host name checked).
#pragma once

#include <chrono>
#include <string>

namespace pgcutover::control {

// One proxy's admin API, from [[control.proxies]].
struct AdminEndpoint {
  std::string admin_url;  // http://host:port or https://host:port
  std::string token;      // bearer token; never printed
  std::string ca_file;    // https: PEM CA bundle that signed the proxy's admin certificate
};

struct AdminResponse {
  bool reachable = false;  // a response came back (any status)
  int status = 0;          // HTTP status
  std::string body;
  std::string error;  // why not reachable, in words
};

AdminResponse admin_request(const AdminEndpoint& proxy, const std::string& method,
                            const std::string& path, std::chrono::milliseconds timeout,
                            const std::string& body = {});

}  // namespace pgcutover::control
