// A small HTTP/1.1 client for the proxies' admin API (GET /v1/status, and later the flip's
// pause/flip/resume calls): one request per connection, bearer token, a hard deadline on
// resolve + connect + write + read together. Plain http only for now.
#pragma once

#include <chrono>
#include <string>

namespace pgcutover::control {

struct AdminResponse {
  bool reachable = false;  // a response came back (any status)
  int status = 0;          // HTTP status
  std::string body;
  std::string error;  // why not reachable, in words
};

AdminResponse admin_request(const std::string& admin_url, const std::string& method,
                            const std::string& path, const std::string& token,
                            std::chrono::milliseconds timeout, const std::string& body = {});

}  // namespace pgcutover::control
