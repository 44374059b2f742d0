// A planned hand-over of the listening sockets from a running proxy to its successor (a new
// binary, the same configuration): `pgcutover-proxy --handover -c FILE`.
//
// Why the sockets themselves move: the port is never shared (see Shard::listen), so the
// successor cannot bind it while the running proxy holds it, and closing it first would refuse
// the connections that arrive in between. The running proxy passes its listening file
// descriptors (client TCP, client Unix socket, admin API) over a Unix socket with SCM_RIGHTS;
// the kernel's accept queue never closes, so no connection attempt is refused.
//
// Who may take over: only a process of the same user (SO_PEERCRED), with the same
// configuration (SHA-256 of the file as each process loaded it) and the same epoch (the
// running proxy's, which is what the shared state file says), and only while no cutover command
// runs and the gate is open. A copied config with another state file, or a proxy loaded from an
// edited file, is refused with the reason: it could serve another backend than the running one.
//
// After the hand-over the predecessor stops accepting and shuts down gracefully (sessions end
// at their next transaction boundary, at most proxy.shutdown_timeout). Until it has exited the
// successor refuses every cutover command (409 handover_in_progress): a flip while the
// predecessor still served clients would split the application's writes. The successor knows
// the predecessor is gone when the hand-over connection closes: the predecessor never closes
// it, its exit does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace pgcutover::proxy {

// The rendezvous of one proxy configuration: next to its state file, which a successor with
// the same configuration names the same way.
std::string handover_socket_path(const std::string& state_file);

// SHA-256 of the file at `path` in hex, "" when it cannot be read.
std::string config_digest(const std::string& path);

struct HandoverRequest {
  long pid = 0;
  std::uint64_t epoch = 0;
  std::string config_digest;
};

// The listening sockets handed over; -1 where the predecessor had none.
struct HandoverSockets {
  int client_tcp = -1;
  int client_unix = -1;
  int admin = -1;
};

struct HandoverGrant {
  bool ok = false;
  std::string error;  // why not, for the operator (no secrets)
  long predecessor_pid = 0;
  int predecessor_clients = 0;
  HandoverSockets sockets;
  int link = -1;  // open while the predecessor lives; readable (EOF) once it has exited
};

// The successor's side: asks the proxy listening at `path`. Blocks at most `timeout_ms`.
HandoverGrant request_handover(const std::string& path, const HandoverRequest& request,
                               int timeout_ms = 5000);

// The running proxy's side: answers hand-over requests at `path` on its own thread.
class HandoverOffer {
 public:
  struct Decision {
    std::string refusal;  // "" to grant
    HandoverSockets sockets;
    int clients = 0;
    std::function<void()> revoke;  // the sockets could not be sent: undo what decide() did
  };
  // decide() runs on the offer's thread for a request from this user. When it grants, the
  // sockets are sent and then given(pid) is called (start the shutdown there).
  HandoverOffer(std::string path, std::function<Decision(const HandoverRequest&)> decide,
                std::function<void(long pid)> given);
  ~HandoverOffer();
  HandoverOffer(const HandoverOffer&) = delete;
  HandoverOffer& operator=(const HandoverOffer&) = delete;

  // Binds the path (replacing a stale one: the caller already owns the port) and starts.
  bool start(std::string& error);
  // Stops answering. Removes the path only if it is still this offer's socket (a successor
  // binds its own at the same path). A granted link stays open until the process exits.
  void stop();

 private:
  void serve();
  void answer(int conn);

  std::string path_;
  std::function<Decision(const HandoverRequest&)> decide_;
  std::function<void(long)> given_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // stop() writes here to end poll()
  unsigned long inode_ = 0;
  std::thread thread_;
  std::atomic<bool> granted_{false};
};

// The successor's watch on its predecessor: calls gone() once the link reads EOF (or stop()).
class PredecessorWatch {
 public:
  PredecessorWatch(int link, long pid, std::function<void()> gone);
  ~PredecessorWatch();
  PredecessorWatch(const PredecessorWatch&) = delete;
  PredecessorWatch& operator=(const PredecessorWatch&) = delete;
  void stop();

 private:
  int link_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace pgcutover::proxy
