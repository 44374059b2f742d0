// The live password of each backend, shared by every shard. A backend's password may come from
// a file or a command (common/password_source.h): it is read at load and reload, and again when
// the backend refuses the password, so the next connection attempt uses the new one.
// Established server connections are not touched (PostgreSQL does not re-check a logged-in
// session).
//
// Authentication failures against a backend are logged once per streak with the fix (not on
// every attempt: a pool retrying every transaction would flood the log) and counted for the
// pgcutover_backend_auth_failures_total metric. No secret ever reaches a log line or a metric.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/password_source.h"
#include "proxy/net/asio.h"

namespace pgcutover::proxy {

// The live password of one backend, shared by every shard's server connections (hence the
// mutex: it is touched only when a server connection logs in, never per transaction).
class BackendSecret {
 public:
  BackendSecret(std::string backend, PasswordSource source, std::string password)
      : backend_(std::move(backend)), source_(std::move(source)), password_(std::move(password)) {}

  // The password and its generation (increases whenever a refresh read a different one).
  std::pair<std::string, std::uint64_t> current() const;
  bool refreshable() const { return source_.kind != PasswordSource::Kind::kUrl; }
  const PasswordSource& source() const { return source_; }

  // Re-reads the source after the backend refused generation `failed`, blocking; a refresh
  // already done since (another shard's) is reused instead of reading again, and sources are
  // read at most once per second. Returns true when a password newer than `failed` is there.
  bool refresh_after_failure(std::uint64_t failed);

 private:
  std::string backend_;
  PasswordSource source_;
  mutable std::mutex mutex_;
  std::string password_;
  std::uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point last_read_{};
  std::string last_error_;  // the source's last failure, logged once until it changes
};

// refresh_after_failure() on a helper thread (a command may take seconds; the shard's event
// loop must not stop for it). The coroutine polls for the answer, so nothing is posted back to
// an executor that may be gone by then.
awaitable<bool> refresh_secret(std::shared_ptr<BackendSecret> secret, std::uint64_t failed);

// ---- authentication failures, logged once per streak and counted per backend ----

// The backend refused the proxy's login with SQLSTATE class 28. `server_message` is the
// server's text (it names the user, never the password).
void note_backend_auth_failure(const std::string& backend, const std::string& user,
                               const std::string& source, const std::string& server_message);
// A login to the backend succeeded: ends a failure streak (logged once as recovered).
void note_backend_auth_success(const std::string& backend);
// Failures counted so far, by backend (monotonic), for the metrics exporter.
std::vector<std::pair<std::string, std::uint64_t>> backend_auth_failure_counts();

}  // namespace pgcutover::proxy
