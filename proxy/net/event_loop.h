// Which kernel interface the data plane's sockets run on.
//
// pgcutover-proxy is built on io_uring (Asio's io_uring backend): a busy shard hands the kernel
// its reads, writes and readiness waits in batches, one io_uring_enter for many, where the
// epoll reactor pays a recvfrom that fails with EAGAIN or an epoll_ctl for nearly every
// statement (docs/benchmarks.md, "Where the proxy's CPU goes"). Asio picks its backend when it
// is compiled, so the same sources are also built on epoll as pgcutover-proxy-epoll, installed
// beside it: where io_uring is not allowed (a seccomp profile such as Docker's default, a
// kernel with kernel.io_uring_disabled set, or older than 5.6) the proxy starts that build.
#pragma once

#include <string>
#include <string_view>

namespace pgcutover::proxy {

enum class EventLoop { kAuto, kIoUring, kEpoll };

bool parse_event_loop(std::string_view text, EventLoop& out);

// The interface this binary was compiled for: "io_uring" or "epoll".
const char* built_event_loop();

// Empty when this process may set up an io_uring; otherwise why not (the errno's text).
std::string io_uring_unavailable();

// The default is epoll: with io_uring, a proxy restarted on its port at once was seen (1 start in
// about 10, test_proxy_sessions) to leave the first connections closed unanswered, and the cause
// is not found yet. io_uring is opt-in (--event-loop auto or io_uring) until it is.
//
// What the binary of the io_uring build does before anything else, given --event-loop:
// returns to run here, or replaces the process with the epoll build (same arguments), or
// returns an exit status (>= 0) after printing why neither can run.
//   - auto: io_uring if this process may set one up, else the epoll build (logged);
//   - io_uring: exit 1 with the reason when it may not;
//   - epoll: the epoll build.
// In the epoll build: io_uring is refused (exit 2), auto and epoll run here.
int choose_event_loop(EventLoop wanted, char** argv);

}  // namespace pgcutover::proxy
