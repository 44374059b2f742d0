#include "proxy/net/port_holder.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

namespace pgcutover::proxy {
namespace {

// Inodes of the sockets listening on `port` in one /proc/net/tcp* table. A line is
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...", the port
// in hex after the colon, state 0A = LISTEN.
void listening_inodes(const char* table, std::uint16_t port, std::set<std::string>& out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(f >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode))
      continue;
    auto colon = local.rfind(':');
    if (colon == std::string::npos || state != "0A") continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) out.insert(inode);
  }
}

std::string process_name(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

std::string describe_port_holder(std::uint16_t port) {
  std::set<std::string> inodes;
  listening_inodes("/proc/net/tcp", port, inodes);
  listening_inodes("/proc/net/tcp6", port, inodes);
  if (inodes.empty()) return "";
  std::set<std::string> wanted;
  for (const auto& i : inodes) wanted.insert("socket:[" + i + "]");

  std::set<std::string> pids, names;
  const std::string self = std::to_string(::getpid());
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* p = ::readdir(proc)) {
      std::string pid = p->d_name;
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid == self)
        continue;
      std::string fd_dir = "/proc/" + pid + "/fd";
      DIR* fds = ::opendir(fd_dir.c_str());
      if (!fds) continue;  // another user's process
      while (dirent* f = ::readdir(fds)) {
        char target[64];
        std::string link = fd_dir + "/" + f->d_name;
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        if (wanted.count(std::string(target, static_cast<std::size_t>(n)))) {
          pids.insert(pid);
          names.insert(process_name(pid));
          break;
        }
      }
      ::closedir(fds);
    }
    ::closedir(proc);
  }
  if (pids.empty()) return "a process this user cannot inspect";
  std::string s = pids.size() == 1 ? "pid " : "pids ";
  bool first = true;
  for (const auto& p : pids) {
    s += (first ? "" : ", ") + p;
    first = false;
  }
  s += " (";
  first = true;
  for (const auto& n : names) {
    s += (first ? "" : ", ") + n;
    first = false;
  }
  return s + ")";
}

}  // namespace pgcutover::proxy
