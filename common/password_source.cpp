// Reading a backend password from a file or a command (common/password_source.h).
#include "common/password_source.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace pgcutover {
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

}  // namespace pgcutover
