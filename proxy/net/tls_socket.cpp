#include "proxy/net/tls_socket.h"

#include <openssl/err.h>

#include <cerrno>

#include <boost/asio/ssl/error.hpp>

namespace pgcutover::proxy {
namespace {

// What an OpenSSL failure stands for, read right after the failed call (errno, error queue).
error_code tls_error(int ssl_error, int saved_errno) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;  // close_notify
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e) return {static_cast<int>(e), asio::error::get_ssl_category()};
  if (ssl_error == SSL_ERROR_SYSCALL) {
    if (saved_errno) return {saved_errno, boost::system::system_category()};
    return asio::ssl::error::stream_truncated;  // the peer closed without close_notify
  }
  return asio::ssl::error::unexpected_result;
}

}  // namespace

TlsSocket::TlsSocket(tcp::socket socket, SSL_CTX* ctx, bool release_buffers)
    : socket_(std::move(socket)) {
  error_code ignored;
  // OpenSSL does the reads and writes: they must not block the shard's thread.
  socket_.non_blocking(true, ignored);
  ssl_ = SSL_new(ctx);
  if (!ssl_) return;
  SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
  // PARTIAL_WRITE + MOVING_WRITE_BUFFER: a write returns what one call sent and may continue
  // from elsewhere in the same buffer. RELEASE_BUFFERS: no record buffer while idle.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (release_buffers) SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  // Read as much as the socket has in one recv (several records for a pipelined batch), not a
  // record header and then its body: half the syscalls. has_pending() sees what it buffered.
  SSL_set_read_ahead(ssl_, 1);
  BIO* bio = SSL_get_rbio(ssl_);
  if (bio) {
    BIO_set_callback_arg(bio, reinterpret_cast<char*>(this));
    BIO_set_callback_ex(bio, &TlsSocket::on_bio);
  }
}

long TlsSocket::on_bio(BIO* bio, int oper, const char*, std::size_t len, int, long, int ret,
                       std::size_t* processed) {
  if (oper != (BIO_CB_READ | BIO_CB_RETURN)) return ret;
  auto* self = reinterpret_cast<TlsSocket*>(BIO_get_callback_arg(bio));
  // One BIO read is one recv() on the descriptor (the socket BIO).
  self->emptied_ = edge_wait::note_read(self->socket_, ret <= 0 && BIO_should_retry(bio) != 0, len,
                                        ret > 0 && processed ? *processed : 0);
  return ret;
}

TlsSocket::~TlsSocket() {
  if (ssl_) SSL_free(ssl_);  // the socket BIO does not close the descriptor; socket_ does
}

awaitable<error_code> TlsSocket::wait_for(int ssl_error) {
  // The descriptor may have been closed (and its number reused) while this coroutine waited:
  // never hand OpenSSL a descriptor that is not ours any more.
  if (!socket_.is_open()) co_return asio::error::bad_descriptor;
  if (ssl_error == SSL_ERROR_WANT_READ) {
    auto [ec] = co_await edge_wait::async_wait_readable(socket_, emptied_, use_nothrow);
    co_return ec ? ec : (socket_.is_open() ? error_code{} : asio::error::bad_descriptor);
  }
  if (ssl_error == SSL_ERROR_WANT_WRITE) {
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_write, use_nothrow);
    co_return ec ? ec : (socket_.is_open() ? error_code{} : asio::error::bad_descriptor);
  }
  co_return asio::ssl::error::unexpected_result;
}

awaitable<error_code> TlsSocket::handshake(bool as_server) {
  if (!ssl_) co_return asio::error::no_memory;
  if (as_server)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
  for (;;) {
    if (!socket_.is_open()) co_return asio::error::bad_descriptor;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return error_code{};
    int err = SSL_get_error(ssl_, r);
    int saved = errno;
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) co_return tls_error(err, saved);
    if (error_code ec = co_await wait_for(err)) co_return ec;
  }
}

// One SSL_read_ex: the bytes, or the SSL error that stopped it (`want`: WANT_READ or
// WANT_WRITE, `ec` empty) or the failure in `ec`. The one place that reads, for both paths.
std::size_t TlsSocket::read_once(asio::mutable_buffer buffer, error_code& ec, int& want) {
  ec = {};
  want = 0;
  if (!socket_.is_open()) {
    ec = asio::error::bad_descriptor;
    return 0;
  }
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  if (SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n) == 1) {
    return n;
  }
  int err = SSL_get_error(ssl_, 0);
  int saved = errno;
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    want = err;
  else
    ec = tls_error(err, saved);
  return 0;
}

std::size_t TlsSocket::read_now(asio::mutable_buffer buffer, error_code& ec) {
  ec = {};
  if (buffer.size() == 0) return 0;
  if (!ssl_) {
    ec = asio::error::bad_descriptor;
    return 0;
  }
  int want = 0;
  std::size_t n = read_once(buffer, ec, want);
  if (want != 0) ec = asio::error::would_block;
  return n;
}

awaitable<std::tuple<error_code, std::size_t>> TlsSocket::read_some(asio::mutable_buffer buffer) {
  if (buffer.size() == 0) co_return std::tuple{error_code{}, std::size_t{0}};
  // OpenSSL's last read emptied the socket: what comes next is an answer still on its way, so
  // wait for it rather than make OpenSSL try a read() that fails with EAGAIN first (one system
  // call per statement on a pooled server connection). Bytes that came since complete the
  // wait at once (edge_wait.h).
  if (emptied_ && !has_pending()) {
    if (error_code ec = co_await wait_for(SSL_ERROR_WANT_READ))
      co_return std::tuple{ec, std::size_t{0}};
  }
  for (;;) {
    error_code ec;
    int want = 0;
    std::size_t n = read_once(buffer, ec, want);
    if (want == 0) co_return std::tuple{ec, n};
    if (error_code wait_ec = co_await wait_for(want)) co_return std::tuple{wait_ec, std::size_t{0}};
  }
}

awaitable<std::tuple<error_code, std::size_t>> TlsSocket::write(asio::const_buffer buffer) {
  const char* p = static_cast<const char*>(buffer.data());
  std::size_t left = buffer.size(), done = 0;
  while (left > 0) {
    if (!socket_.is_open()) co_return std::tuple{error_code(asio::error::bad_descriptor), done};
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    if (SSL_write_ex(ssl_, p + done, left, &n) == 1) {
      done += n;
      left -= n;
      continue;
    }
    int err = SSL_get_error(ssl_, 0);
    int saved = errno;
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
      co_return std::tuple{tls_error(err, saved), done};
    if (error_code ec = co_await wait_for(err)) co_return std::tuple{ec, done};
  }
  co_return std::tuple{error_code{}, done};
}

}  // namespace pgcutover::proxy
