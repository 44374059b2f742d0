#include "proxy/net/stream.h"

#include <sys/socket.h>

#include <cerrno>

#include <openssl/x509_vfy.h>
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>

namespace pgcutover::proxy {

Stream::Stream(tcp::socket socket) : transport_(std::move(socket)) {
  error_code ignored;
  // Small protocol messages in both directions: never wait for Nagle.
  std::get<tcp::socket>(transport_).set_option(tcp::no_delay(true), ignored);
}

Stream::Stream(asio::local::stream_protocol::socket socket) : transport_(std::move(socket)) {}

awaitable<error_code> Stream::connect(const tcp::resolver::results_type& endpoints) {
  if (transport_.index() != 0) co_return asio::error::operation_not_supported;
  auto [ec, ep] = co_await asio::async_connect(std::get<0>(transport_), endpoints, use_nothrow);
  (void)ep;
  if (!ec) {
    error_code ignored;
    std::get<0>(transport_).set_option(tcp::no_delay(true), ignored);
  }
  co_return ec;
}

awaitable<std::tuple<error_code, std::size_t>> Stream::read_some(asio::mutable_buffer buffer) {
  error_code ec;
  std::size_t n = 0;
  switch (transport_.index()) {
    case 0:
      std::tie(ec, n) = co_await std::get<0>(transport_).async_read_some(buffer, use_nothrow);
      break;
    case 1:
      std::tie(ec, n) = co_await std::get<1>(transport_).async_read_some(buffer, use_nothrow);
      break;
    default:
      co_return co_await std::get<2>(transport_)->read_some(buffer);
  }
  // Asio's own read: its reactor has noted a short one (an "exhausted" socket) itself.
  drained_ = !ec && n < buffer.size();
  co_return std::tuple{ec, n};
}

void Stream::note_read(std::size_t asked, std::size_t got, const error_code& ec) {
  bool would_block = ec == asio::error::would_block;
  if (transport_.index() == 0)
    drained_ = edge_wait::note_read(std::get<0>(transport_), would_block, asked, got);
  else
    drained_ = edge_wait::note_read(std::get<1>(transport_), would_block, asked, got);
}

std::size_t Stream::read_now(asio::mutable_buffer buffer, error_code& ec) {
  if (transport_.index() == 2) return std::get<2>(transport_)->read_now(buffer, ec);
  ec = {};
  int fd = descriptor();
  if (fd < 0) {
    ec = asio::error::bad_descriptor;
    return 0;
  }
  ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
  if (n > 0) {
    note_read(buffer.size(), static_cast<std::size_t>(n), ec);
    return static_cast<std::size_t>(n);
  }
  if (n == 0) {
    ec = asio::error::eof;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    ec = asio::error::would_block;
  } else if (errno == EINTR) {
    ec = asio::error::would_block;
    drained_ = false;  // interrupted, not empty: the wait re-arms
    return 0;
  } else {
    ec = error_code(errno, boost::system::system_category());
  }
  note_read(buffer.size(), 0, ec);
  return 0;
}

bool Stream::buffered() const {
  return transport_.index() == 2 && std::get<2>(transport_)->has_pending();
}

std::size_t Stream::send_now(asio::const_buffer buffer, error_code& ec) {
  ec = {};
  int fd = descriptor();
  if (fd < 0) {
    ec = asio::error::bad_descriptor;
    return 0;
  }
  std::size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n = ::send(fd, static_cast<const char*>(buffer.data()) + done, buffer.size() - done,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      ec = error_code(errno, boost::system::system_category());
    break;  // the socket's buffer is full: the rest waits for writability
  }
  return done;
}

awaitable<std::tuple<error_code, std::size_t>> Stream::write(asio::const_buffer buffer) {
  if (transport_.index() == 2) co_return co_await std::get<2>(transport_)->write(buffer);
  // Sent here and now when the socket takes it all (the usual case: a statement or an answer
  // is small): no completion posted to the scheduler, no suspension of the coroutine. Asio's
  // async_write would send at once too, but resume the caller through a posted handler, one
  // more round through the shard's loop (and an extra epoll_wait) per message.
  error_code ec;
  std::size_t done = send_now(buffer, ec);
  if (ec || done == buffer.size()) co_return std::tuple{ec, done};
  auto rest = buffer + done;
  std::size_t more = 0;
  if (transport_.index() == 0)
    std::tie(ec, more) = co_await asio::async_write(std::get<0>(transport_), rest, use_nothrow);
  else
    std::tie(ec, more) = co_await asio::async_write(std::get<1>(transport_), rest, use_nothrow);
  co_return std::tuple{ec, done + more};
}

awaitable<error_code> Stream::tls_accept(asio::ssl::context& ctx) {
  if (transport_.index() != 0) co_return asio::error::operation_not_supported;
  auto tls = std::make_unique<TlsSocket>(std::move(std::get<0>(transport_)), ctx.native_handle(),
                                         /*release_buffers=*/true);
  TlsSocket& t = *tls;
  transport_ = std::move(tls);  // before the wait: close() and cancel() reach it meanwhile
  co_return co_await t.handshake(/*as_server=*/true);
}

awaitable<error_code> Stream::tls_connect(asio::ssl::context& ctx, const std::string& sni,
                                          const std::string& verify_host) {
  if (transport_.index() != 0) co_return asio::error::operation_not_supported;
  auto tls = std::make_unique<TlsSocket>(std::move(std::get<0>(transport_)), ctx.native_handle(),
                                         /*release_buffers=*/false);
  if (!tls->native_handle()) co_return asio::error::no_memory;
  if (!sni.empty()) SSL_set_tlsext_host_name(tls->native_handle(), sni.c_str());
  if (!verify_host.empty()) {
    // Checks the certificate's SAN/CN against the host name we connected to (libpq's
    // verify-full), on top of the chain check configured in the context.
    error_code not_ip;
    asio::ip::make_address(verify_host, not_ip);
    if (!not_ip) {
      // An IP address is matched against the certificate's IP SANs, as libpq does.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls->native_handle()), verify_host.c_str());
    } else {
      SSL_set1_host(tls->native_handle(), verify_host.c_str());
    }
  }
  TlsSocket& t = *tls;
  transport_ = std::move(tls);  // before the wait: close() and cancel() reach it meanwhile
  co_return co_await t.handshake(/*as_server=*/false);
}

void Stream::close() {
  error_code ignored;
  switch (transport_.index()) {
    case 0:
      std::get<0>(transport_).close(ignored);
      break;
    case 1:
      std::get<1>(transport_).close(ignored);
      break;
    default:
      std::get<2>(transport_)->socket().close(ignored);
      break;
  }
}

int Stream::descriptor() {
  switch (transport_.index()) {
    case 0:
      return std::get<0>(transport_).native_handle();
    case 1:
      return std::get<1>(transport_).native_handle();
    default:
      return std::get<2>(transport_)->socket().native_handle();
  }
}

void Stream::discard_unread() {
  int fd = descriptor();
  if (fd < 0) return;
  char sink[4096];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) return;
  }
}

void Stream::cancel() {
  error_code ignored;
  switch (transport_.index()) {
    case 0:
      std::get<0>(transport_).cancel(ignored);
      break;
    case 1:
      std::get<1>(transport_).cancel(ignored);
      break;
    default:
      std::get<2>(transport_)->socket().cancel(ignored);
      break;
  }
}

bool Stream::readable_or_closed() {
  // Read ahead of a ReadyForQuery, inside OpenSSL: the socket would not show it.
  if (transport_.index() == 2 && std::get<2>(transport_)->has_pending()) return true;
  int fd = descriptor();
  if (fd < 0) return true;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  int rc = ::poll(&p, 1, 0);
  return rc != 0;  // readable, hung up, or poll failed: do not trust it
}

std::string Stream::peer() const {
  error_code ec;
  const tcp::socket* s = nullptr;
  if (transport_.index() == 0) s = &std::get<0>(transport_);
  if (transport_.index() == 2) s = &std::get<2>(transport_)->socket();
  if (!s) return "unix";
  auto ep = s->remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace pgcutover::proxy
