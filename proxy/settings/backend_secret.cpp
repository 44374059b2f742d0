#include "proxy/settings/backend_secret.h"

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "common/log.h"

namespace pgcutover::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct AuthStreak {
  std::uint64_t total = 0;   // every failure since start (the metric)
  std::uint64_t streak = 0;  // failures since the last success
};

std::mutex auth_mutex;
std::map<std::string, AuthStreak, std::less<>>& auth_log() {
  static std::map<std::string, AuthStreak, std::less<>> m;
  return m;
}
std::atomic<bool> any_failing{false};

}  // namespace

std::pair<std::string, std::uint64_t> BackendSecret::current() const {
  std::lock_guard lock(mutex_);
  return {password_, generation_};
}

bool BackendSecret::refresh_after_failure(std::uint64_t failed) {
  if (!refreshable()) return false;
  std::lock_guard lock(mutex_);  // one reader at a time; the others reuse its answer
  if (generation_ > failed) return true;
  auto now = SteadyClock::now();
  if (now - last_read_ < std::chrono::seconds(1)) return false;
  last_read_ = now;
  SecretRead r = read_password_source(source_);
  if (!r.ok) {
    if (r.error == last_error_) return false;  // said once already; counted as auth failures
    last_error_ = r.error;
    log::error("backend_password_source_failed",
               {{"backend", backend_},
                {"error", r.error},
                {"fix", "fix the " + describe(source_) + " of [backends." + backend_ +
                            "]; it is read again on the next failed login and on SIGHUP"}});
    return false;
  }
  last_error_.clear();
  if (r.secret == password_) return false;
  password_ = std::move(r.secret);
  ++generation_;
  log::info("backend_password_reloaded", {{"backend", backend_}, {"source", describe(source_)}});
  return true;
}

awaitable<bool> refresh_secret(std::shared_ptr<BackendSecret> secret, std::uint64_t failed) {
  auto answer = std::make_shared<std::promise<bool>>();
  std::future<bool> done = answer->get_future();
  std::thread([secret, failed, answer] {
    answer->set_value(secret->refresh_after_failure(failed));
  }).detach();
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    poll.expires_after(std::chrono::milliseconds(5));
    co_await poll.async_wait(use_nothrow);
  }
  co_return done.get();
}

void note_backend_auth_failure(const std::string& backend, const std::string& user,
                               const std::string& source, const std::string& server_message) {
  std::uint64_t streak = 0;
  {
    std::lock_guard lock(auth_mutex);
    AuthStreak& s = auth_log()[backend];
    ++s.total;
    streak = ++s.streak;
  }
  any_failing.store(true, std::memory_order_relaxed);
  if (streak == 1) {
    log::error("backend_auth_failed",
               {{"backend", backend},
                {"user", user},
                {"password_from", source},
                {"error", server_message},
                {"fix",
                 "the backend refused the proxy's credentials (rotated?): put the new "
                 "password in [backends." +
                     backend +
                     "] (its password_file or password_command is re-read on the next "
                     "attempt; a URL needs SIGHUP); further failures are only counted "
                     "in pgcutover_backend_auth_failures_total until a login succeeds"}});
  } else {
    log::debug("backend_auth_failed_again",
               {{"backend", backend}, {"streak", std::to_string(streak)}});
  }
}

void note_backend_auth_success(const std::string& backend) {
  if (!any_failing.load(std::memory_order_relaxed)) return;  // the common case: no lock
  std::uint64_t streak = 0;
  bool still_failing = false;
  {
    std::lock_guard lock(auth_mutex);
    auto it = auth_log().find(backend);
    if (it == auth_log().end() || it->second.streak == 0) return;
    streak = it->second.streak;
    it->second.streak = 0;
    for (const auto& [name, s] : auth_log()) still_failing |= s.streak > 0;
  }
  any_failing.store(still_failing, std::memory_order_relaxed);
  log::info("backend_auth_recovered",
            {{"backend", backend}, {"failed_attempts", std::to_string(streak)}});
}

std::vector<std::pair<std::string, std::uint64_t>> backend_auth_failure_counts() {
  std::lock_guard lock(auth_mutex);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [name, s] : auth_log()) out.emplace_back(name, s.total);
  return out;
}

}  // namespace pgcutover::proxy
