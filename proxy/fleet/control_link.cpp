#include "proxy/fleet/control_link.h"

#include "protocol/builders.h"
#include "protocol/messages.h"
#include "proxy/net/message_io.h"

namespace pgcutover::proxy {

std::string QueryRows::first() const {
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return {};
  return *rows[0][0];
}

// A query's answer being assembled, and the timer its asker sleeps on until it is complete.
struct ControlLink::Waiter {
  explicit Waiter(const asio::any_io_executor& ex)
      : wake(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer wake;
  QueryRows result;
  bool done = false;
};

ControlLink::ControlLink(std::unique_ptr<ServerConnection> conn, protocol::Limits limits,
                         OnNotify on_notify)
    : conn_(std::move(conn)), limits_(limits), on_notify_(std::move(on_notify)) {}

ControlLink::~ControlLink() {
  close();
}

void ControlLink::start(asio::any_io_executor ex) {
  ex_ = ex;
  asio::co_spawn(
      ex_, [self = shared_from_this()] { return self->read_loop(); }, asio::detached);
}

awaitable<QueryRows> ControlLink::query(std::string sql) {
  auto w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  if (!open_) {
    w->result.sqlstate = "08006";
    w->result.error = "control session closed";
    co_return w->result;
  }
  std::string out;
  protocol::append_query(out, sql);
  outbox_.push_back(std::move(out));
  waiting_.push_back(w);
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(
        ex_, [self = shared_from_this()] { return self->write_loop(); }, asio::detached);
  }
  if (!w->done) co_await w->wake.async_wait(use_nothrow);
  co_return std::move(w->result);
}

awaitable<void> ControlLink::closed() {
  if (!open_) co_return;
  auto t = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                asio::steady_timer::time_point::max());
  close_watchers_.push_back(t);
  co_await t->async_wait(use_nothrow);
}

void ControlLink::close() {
  if (!open_) return;
  open_ = false;
  if (conn_ && conn_->stream) conn_->stream->close();
  fail_all("control session closed");
}

void ControlLink::fail_all(const std::string& why) {
  open_ = false;
  outbox_.clear();
  for (auto& w : waiting_) {
    w->result.ok = false;
    w->result.sqlstate = "08006";
    w->result.error = why;
    w->result.rows.clear();
    w->done = true;
    w->wake.cancel();
  }
  waiting_.clear();
  for (auto& t : close_watchers_) t->cancel();
  close_watchers_.clear();
}

awaitable<void> ControlLink::write_loop() {
  auto self = shared_from_this();
  while (open_ && !outbox_.empty()) {
    std::string out = std::move(outbox_.front());
    outbox_.pop_front();
    if (auto [ec, n] = co_await conn_->stream->write(asio::buffer(out)); ec) {
      close();
      break;
    }
  }
  writing_ = false;
}

awaitable<void> ControlLink::read_loop() {
  auto self = shared_from_this();
  std::string error_state, error_text;
  while (open_) {
    ReadMessage m = co_await read_message(*conn_->stream, conn_->in, limits_);
    if (!m.ok()) break;
    protocol::Bytes body = protocol::as_bytes(m.body);
    switch (m.type) {
      case protocol::backend::kNotificationResponse:
        if (auto n = protocol::parse_notification(body); n && on_notify_)
          on_notify_(n->channel, n->payload);
        break;
      case protocol::backend::kDataRow:
        if (auto row = protocol::parse_data_row(body); row && !waiting_.empty()) {
          auto& rows = waiting_.front()->result.rows;
          rows.emplace_back();
          for (const auto& v : *row)
            rows.back().emplace_back(v ? std::optional<std::string>(std::string(*v))
                                       : std::nullopt);
        }
        break;
      case protocol::backend::kErrorResponse:
        if (!waiting_.empty() && waiting_.front()->result.sqlstate.empty()) {
          auto e = protocol::parse_error_notice(body);
          waiting_.front()->result.sqlstate = e ? std::string(e->sqlstate) : "XX000";
          waiting_.front()->result.error = e ? std::string(e->message) : "malformed error";
        }
        break;
      case protocol::backend::kReadyForQuery:
        if (!waiting_.empty()) {
          auto w = waiting_.front();
          waiting_.pop_front();
          w->result.ok = w->result.sqlstate.empty();
          w->done = true;
          w->wake.cancel();
        }
        break;
      case protocol::backend::kCopyInResponse:
      case protocol::backend::kCopyOutResponse:
      case protocol::backend::kCopyBothResponse:
        close();  // never asked for: the session's state is unknown
        break;
      default:
        break;  // RowDescription, CommandComplete, NoticeResponse, ParameterStatus
    }
  }
  close();
}

}  // namespace pgcutover::proxy
