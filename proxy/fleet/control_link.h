// One control session from the proxy to a database of the fleet channel: simple queries sent
// as they come (pipelined: each answer is matched to its query in order), rows returned as
// text, and every NotificationResponse handed to a callback the moment it arrives, whatever
// query is running. One reader coroutine owns the socket's read side; writes are queued.
// Everything runs on one io_context thread (the fleet agent's): no locks.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/net/asio.h"
#include "proxy/pool/server_connection.h"

namespace pgcutover::proxy {

struct QueryRows {
  bool ok = false;
  std::string sqlstate;  // of the error, when !ok ("08006" when the session is gone)
  std::string error;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // First column of the first row, or "" (NULL included).
  std::string first() const;
};

class ControlLink : public std::enable_shared_from_this<ControlLink> {
 public:
  using OnNotify = std::function<void(std::string_view channel, std::string_view payload)>;

  ControlLink(std::unique_ptr<ServerConnection> conn, protocol::Limits limits, OnNotify on_notify);
  ~ControlLink();

  // Starts reading on `ex` (one thread). Call once.
  void start(asio::any_io_executor ex);
  // Runs `sql` (one or several statements, simple protocol); the rows of every statement that
  // returned some, in order. Completes with !ok at once when the session is closed.
  awaitable<QueryRows> query(std::string sql);
  // Completes when the session has ended (read error, server gone, close()).
  awaitable<void> closed();
  void close();
  bool is_open() const { return open_; }
  std::int32_t backend_pid() const { return conn_->pid; }

 private:
  struct Waiter;
  awaitable<void> read_loop();
  awaitable<void> write_loop();
  void fail_all(const std::string& why);

  std::unique_ptr<ServerConnection> conn_;
  protocol::Limits limits_;
  asio::any_io_executor ex_;
  OnNotify on_notify_;
  bool open_ = true;
  bool writing_ = false;
  std::deque<std::string> outbox_;
  std::deque<std::shared_ptr<Waiter>> waiting_;  // sent, answer not complete (FIFO)
  std::vector<std::shared_ptr<asio::steady_timer>> close_watchers_;
};

}  // namespace pgcutover::proxy
