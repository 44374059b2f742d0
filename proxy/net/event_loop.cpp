#include "proxy/net/event_loop.h"

#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/log.h"

namespace pgcutover::proxy {
namespace {

#ifdef BOOST_ASIO_HAS_IO_URING
constexpr bool kBuiltOnIoUring = true;
#else
constexpr bool kBuiltOnIoUring = false;
#endif

constexpr const char* kEpollBuildName = "pgcutover-proxy-epoll";

// Replaces this process with the epoll build found next to this binary; returns only when
// that failed, with the exit status to use.
int exec_epoll_build(char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path sibling =
      ec ? std::filesystem::path(kEpollBuildName) : self.parent_path() / kEpollBuildName;
  std::vector<char*> args;
  args.push_back(const_cast<char*>(kEpollBuildName));
  for (char** a = argv + 1; *a; ++a) args.push_back(*a);
  args.push_back(nullptr);
  ::execv(sibling.c_str(), args.data());
  int err = errno;
  std::fprintf(stderr,
               "pgcutover-proxy: cannot start the epoll build %s: %s (install it beside "
               "pgcutover-proxy, as deploy/build.sh and the packages do)\n",
               sibling.c_str(), std::strerror(err));
  return 1;
}

}  // namespace

bool parse_event_loop(std::string_view text, EventLoop& out) {
  if (text == "auto") {
    out = EventLoop::kAuto;
  } else if (text == "io_uring") {
    out = EventLoop::kIoUring;
  } else if (text == "epoll") {
    out = EventLoop::kEpoll;
  } else {
    return false;
  }
  return true;
}

const char* built_event_loop() {
  return kBuiltOnIoUring ? "io_uring" : "epoll";
}

std::string io_uring_unavailable() {
  io_uring_params params{};
  long fd = ::syscall(__NR_io_uring_setup, 2, &params);
  if (fd < 0) return std::strerror(errno);
  ::close(static_cast<int>(fd));
  return {};
}

int choose_event_loop(EventLoop wanted, char** argv) {
  if (!kBuiltOnIoUring) {
    if (wanted != EventLoop::kIoUring) return -1;
    std::fputs(
        "pgcutover-proxy: --event-loop io_uring: this is the epoll build; run "
        "pgcutover-proxy\n",
        stderr);
    return 2;
  }
  if (wanted == EventLoop::kEpoll) return exec_epoll_build(argv);
  std::string why = io_uring_unavailable();
  if (why.empty()) return -1;
  if (wanted == EventLoop::kIoUring) {
    std::fprintf(stderr,
                 "pgcutover-proxy: --event-loop io_uring: this process may not set up an "
                 "io_uring (%s); use --event-loop auto or epoll\n",
                 why.c_str());
    return 1;
  }
  log::warn("io_uring_unavailable", {{"error", why}, {"running", kEpollBuildName}});
  return exec_epoll_build(argv);
}

}  // namespace pgcutover::proxy
