#include "proxy/runtime/handover.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/log.h"

namespace pgcutover::proxy {
namespace {

constexpr std::size_t kMaxLine = 1024;

bool fill_address(const std::string& path, sockaddr_un& addr, std::string& error) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = "hand-over socket path " + path + " is longer than " +
            std::to_string(sizeof addr.sun_path - 1) +
            " bytes: put proxy.state_file in a shorter directory";
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  return true;
}

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Reads up to a newline (the protocol is one line each way). Only the first recvmsg may carry
// file descriptors: they arrive with the first byte of the answer.
bool read_line(int fd, std::string& line, std::vector<int>* fds) {
  line.clear();
  while (line.size() < kMaxLine) {
    char buf[256];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fds) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
    }
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (fds) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int received;
          std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          fds->push_back(received);
        }
      }
      fds = nullptr;
    }
    line.append(buf, static_cast<std::size_t>(n));
    if (auto nl = line.find('\n'); nl != std::string::npos) {
      line.resize(nl);
      return true;
    }
  }
  return false;
}

bool send_all(int fd, const std::string& text, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(text.size());
}

// "key=value" from a space-separated line; "" when absent.
std::string field(const std::string& line, const std::string& key) {
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return {};
}

long to_long(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stol(s);
  } catch (const std::exception&) {
    return 0;
  }
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::string handover_socket_path(const std::string& state_file) {
  return state_file + ".handover";
}

std::string config_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

HandoverGrant request_handover(const std::string& path, const HandoverRequest& request,
                               int timeout_ms) {
  HandoverGrant grant;
  sockaddr_un addr;
  if (!fill_address(path, addr, grant.error)) return grant;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    grant.error = std::string("socket: ") + std::strerror(errno);
    return grant;
  }
  set_timeouts(fd, timeout_ms);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    grant.error = "no running proxy offers a hand-over at " + path + " (" + std::strerror(e) +
                  "): start without --handover, or check that the running proxy uses this "
                  "configuration (the path follows proxy.state_file)";
    return grant;
  }
  std::string ask = "handover 1 pid=" + std::to_string(request.pid) +
                    " epoch=" + std::to_string(request.epoch) + " config=" + request.config_digest +
                    "\n";
  std::string line;
  std::vector<int> fds;
  if (!send_all(fd, ask, {}) || !read_line(fd, line, &fds)) {
    for (int& f : fds) close_fd(f);
    ::close(fd);
    grant.error = "the proxy at " + path + " did not answer the hand-over request";
    return grant;
  }
  grant.predecessor_pid = to_long(field(line, "pid"));
  if (line.rfind("ok ", 0) != 0) {
    for (int& f : fds) close_fd(f);
    ::close(fd);
    // The reason is the rest of the line: it is prose.
    auto at = line.find(" reason=");
    std::string reason = at == std::string::npos ? line : line.substr(at + 8);
    grant.error = "the running proxy (pid " + std::to_string(grant.predecessor_pid) +
                  ") refused the hand-over: " + reason;
    return grant;
  }
  // The answer names the sockets in the order they were sent.
  std::string names = field(line, "sockets");
  std::istringstream list(names);
  std::string name;
  std::size_t i = 0;
  while (std::getline(list, name, ',') && i < fds.size()) {
    int f = fds[i++];
    if (name == "tcp")
      grant.sockets.client_tcp = f;
    else if (name == "unix")
      grant.sockets.client_unix = f;
    else if (name == "admin")
      grant.sockets.admin = f;
    else
      ::close(f);
  }
  for (; i < fds.size(); ++i) ::close(fds[i]);
  if (grant.sockets.client_tcp < 0) {
    close_fd(grant.sockets.client_unix);
    close_fd(grant.sockets.admin);
    ::close(fd);
    grant.error = "the running proxy granted the hand-over but sent no listening socket";
    return grant;
  }
  timeval none{0, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  grant.predecessor_clients = static_cast<int>(to_long(field(line, "clients")));
  grant.link = fd;
  grant.ok = true;
  return grant;
}

HandoverOffer::HandoverOffer(std::string path,
                             std::function<Decision(const HandoverRequest&)> decide,
                             std::function<void(long pid)> given)
    : path_(std::move(path)), decide_(std::move(decide)), given_(std::move(given)) {}

HandoverOffer::~HandoverOffer() {
  stop();
}

bool HandoverOffer::start(std::string& error) {
  sockaddr_un addr;
  if (!fill_address(path_, addr, error)) return false;
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
    error = std::string("hand-over socket: ") + std::strerror(errno);
    close_fd(listen_fd_);
    return false;
  }
  // This process owns the port (the caller bound it or was handed it), so a socket file left
  // at the path belongs to a predecessor that is gone or leaving: replace it.
  ::unlink(path_.c_str());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::chmod(path_.c_str(), 0600) != 0 || ::listen(listen_fd_, 4) != 0) {
    error = "hand-over socket " + path_ + ": " + std::strerror(errno);
    close_fd(listen_fd_);
    close_fd(wake_[0]);
    close_fd(wake_[1]);
    return false;
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) inode_ = st.st_ino;
  thread_ = std::thread([this] { serve(); });
  return true;
}

void HandoverOffer::stop() {
  if (!thread_.joinable()) return;
  char one = 1;
  [[maybe_unused]] auto n = ::write(wake_[1], &one, 1);
  thread_.join();
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
  close_fd(listen_fd_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

void HandoverOffer::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    answer(conn);
  }
}

void HandoverOffer::answer(int conn) {
  auto refuse = [&](const std::string& reason) {
    std::string r = reason;
    for (char& c : r)
      if (c == '\n') c = ' ';
    send_all(conn, "refused pid=" + std::to_string(::getpid()) + " reason=" + r + "\n", {});
    ::close(conn);
    log::warn("handover_refused", {{"reason", reason}});
  };
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != ::getuid()) {
    refuse("the requesting process runs as another user");
    return;
  }
  set_timeouts(conn, 2000);
  std::string line;
  if (!read_line(conn, line, nullptr) || line.rfind("handover 1 ", 0) != 0) {
    refuse("not a hand-over request");
    return;
  }
  HandoverRequest request;
  request.pid = to_long(field(line, "pid"));
  request.epoch = static_cast<std::uint64_t>(to_long(field(line, "epoch")));
  request.config_digest = field(line, "config");
  if (granted_) {
    refuse("this proxy has already handed over its sockets");
    return;
  }
  Decision d = decide_(request);
  if (!d.refusal.empty()) {
    refuse(d.refusal);
    return;
  }
  std::vector<int> fds;
  std::string names;
  auto add = [&](int fd, const char* name) {
    if (fd < 0) return;
    fds.push_back(fd);
    names += (names.empty() ? "" : ",") + std::string(name);
  };
  add(d.sockets.client_tcp, "tcp");
  add(d.sockets.client_unix, "unix");
  add(d.sockets.admin, "admin");
  std::string ok = "ok pid=" + std::to_string(::getpid()) +
                   " clients=" + std::to_string(d.clients) + " sockets=" + names + "\n";
  if (!send_all(conn, ok, fds)) {
    ::close(conn);
    if (d.revoke) d.revoke();
    log::warn("handover_failed",
              {{"pid", std::to_string(request.pid)}, {"error", "could not send the sockets"}});
    return;
  }
  // `conn` stays open on purpose until this process exits: its closing is how the successor
  // learns that nobody else serves the port any more.
  granted_ = true;
  log::info("handover_given",
            {{"to_pid", std::to_string(request.pid)}, {"clients", std::to_string(d.clients)}});
  given_(request.pid);
}

PredecessorWatch::PredecessorWatch(int link, long pid, std::function<void()> gone) : link_(link) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this, pid, gone = std::move(gone)] {
    for (;;) {
      pollfd p[2] = {{link_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(p, wake_[0] >= 0 ? 2 : 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || p[1].revents) return;
      char buf[64];
      ssize_t r = ::read(link_, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0) continue;  // nothing is ever sent; ignore
      log::info("handover_complete", {{"predecessor_pid", std::to_string(pid)}});
      gone();
      return;
    }
  });
}

PredecessorWatch::~PredecessorWatch() {
  stop();
}

void PredecessorWatch::stop() {
  if (thread_.joinable()) {
    char one = 1;
    [[maybe_unused]] auto n = ::write(wake_[1], &one, 1);
    thread_.join();
  }
  close_fd(link_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

}  // namespace pgcutover::proxy
