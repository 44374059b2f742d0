#include "proxy/secret_source.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "proxy/log.h"

extern char** environ;

namespace pgcutover::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A secret is one line: the newline a shell `echo` or an editor adds is not part of it.
void strip_trailing_newlines(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
}

constexpr std::size_t kMaxSecretBytes = 64 * 1024;

SecretRead read_file_secret(const std::string& path) {
  SecretRead r;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    r.error = "password_file \"" + path + "\": " + std::strerror(errno);
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  r.secret = ss.str();
  if (r.secret.size() > kMaxSecretBytes) {
    r.secret.clear();
    r.error = "password_file \"" + path + "\" is larger than 64 KiB: not a password";
    return r;
  }
  strip_trailing_newlines(r.secret);
  if (r.secret.empty()) {
    r.error = "password_file \"" + path + "\" is empty";
    return r;
  }
  r.ok = true;
  return r;
}

// /bin/sh -c command, stdout captured, stdin and stderr on /dev/null (stderr may echo what
// the command read, and the proxy's log must never carry a secret). In its own process group
// so that a timeout kills the shell and whatever it started.
SecretRead run_command_secret(const std::string& command, Duration timeout) {
  SecretRead r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = std::string("password_command: pipe: ") + std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::string shell = "/bin/sh", dash_c = "-c", text = command;
  char* argv[] = {shell.data(), dash_c.data(), text.data(), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    r.error = std::string("password_command could not start: ") + std::strerror(rc);
    return r;
  }
  const auto deadline = SteadyClock::now() + timeout;
  bool timed_out = false;
  std::string out;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    char buf[4096];
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the command closed its stdout
    out.append(buf, static_cast<std::size_t>(got));
    if (out.size() > kMaxSecretBytes) break;
  }
  ::close(fds[0]);
  // The command may linger after closing stdout: give it until the deadline, then kill it.
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (!timed_out && SteadyClock::now() >= deadline) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (timed_out) {
    std::ostringstream seconds;
    seconds << static_cast<double>(timeout.count()) / 1000.0;
    r.error = "password_command did not finish within password_command_timeout (" + seconds.str() +
              " s) and was killed";
    return r;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.error = WIFEXITED(status)
                  ? "password_command exited with status " + std::to_string(WEXITSTATUS(status))
                  : "password_command was killed by signal " + std::to_string(WTERMSIG(status));
    r.error += " (run it by hand as the proxy's user to see its error)";
    return r;
  }
  if (out.size() > kMaxSecretBytes) {
    r.error = "password_command printed more than 64 KiB: not a password";
    return r;
  }
  strip_trailing_newlines(out);
  if (out.empty()) {
    r.error = "password_command printed nothing";
    return r;
  }
  r.secret = std::move(out);
  r.ok = true;
  return r;
}

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

SecretRead read_password_source(const PasswordSource& source) {
  switch (source.kind) {
    case PasswordSource::Kind::kFile:
      return read_file_secret(source.file);
    case PasswordSource::Kind::kCommand:
      return run_command_secret(source.command, source.timeout);
    case PasswordSource::Kind::kUrl:
      break;
  }
  return {false, {}, "the password comes from the URL"};
}

std::string describe(const PasswordSource& source) {
  switch (source.kind) {
    case PasswordSource::Kind::kFile:
      return "password_file " + source.file;
    case PasswordSource::Kind::kCommand:
      return "password_command";
    case PasswordSource::Kind::kUrl:
      break;
  }
  return "url";
}

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
