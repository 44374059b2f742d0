#include "control/db/subprocess.h"
#include "common/redact.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

extern char** environ;

namespace pgcutover::control {

ProcessResult run_client_tool(const std::vector<std::string>& argv, const ConnSpec& conn,
                              const std::string& stdout_path) {
  ProcessResult result;
  // Environment: ours minus every libpq variable, plus the connection's.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "PG", 2) == 0) continue;
    env.emplace_back(*e);
  }
  for (const auto& [k, v] : conn.libpq_environment()) env.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (stdout_path.empty()) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
  }
  auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argp[0], &fa, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(err_pipe[1]);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  if (rc != 0) {
    result.errors = std::string("cannot run ") + argv[0] + ": " + std::strerror(rc) +
                    " (install the PostgreSQL client tools)";
    close(err_pipe[0]);
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    return result;
  }
  // Drain both pipes together so neither child stream can fill up and block the child.
  std::vector<pollfd> fds = {{err_pipe[0], POLLIN, 0}};
  if (out_pipe[0] >= 0) fds.push_back({out_pipe[0], POLLIN, 0});
  char buf[65536];
  while (!fds.empty()) {
    if (poll(fds.data(), fds.size(), -1) < 0) break;
    for (size_t i = 0; i < fds.size();) {
      if (fds[i].revents == 0) {
        ++i;
        continue;
      }
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i));
        continue;
      }
      (fds[i].fd == err_pipe[0] ? result.errors : result.output).append(buf, n);
      ++i;
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.errors = redact(result.errors);
  return result;
}

}  // namespace pgcutover::control
