// TLS straight on the socket: OpenSSL reads and writes the non-blocking descriptor itself
// (SSL_set_fd) and the coroutine waits for readiness whenever it answers WANT_READ or
// WANT_WRITE.
//
// Why not asio::ssl::stream: it keeps two 17 KiB buffers per stream for the stream's whole life
// (zero-filled, so resident) and a BIO pair of two more, and copies every byte through them:
// an idle TLS client cost ~72 KB, and each record two extra copies. Here the only buffers are
// OpenSSL's own, released while empty (SSL_MODE_RELEASE_BUFFERS): an idle client holds the SSL
// object and nothing else.
//
// One reader and one writer may be suspended at once (the relay's two directions), as with any
// Asio stream; both run on the shard's one thread, so OpenSSL is never entered concurrently.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <tuple>

#include "proxy/net/asio.h"
#include "proxy/net/edge_wait.h"

namespace pgcutover::proxy {

class TlsSocket {
 public:
  // Takes the connected socket; `ctx` configures the SSL object (verification, certificates).
  // `release_buffers`: free OpenSSL's record buffers whenever they empty. For clients, most of
  // which sit idle; not for pooled server connections, few and busy, which would pay a
  // malloc/free of ~17 KiB per read and per write for it.
  TlsSocket(tcp::socket socket, SSL_CTX* ctx, bool release_buffers);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  SSL* native_handle() { return ssl_; }
  tcp::socket& socket() { return socket_; }
  const tcp::socket& socket() const { return socket_; }

  awaitable<error_code> handshake(bool as_server);
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buffer);
  // Writes the whole buffer.
  awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer);
  // OpenSSL holds bytes (decrypted or not) that the socket no longer shows.
  bool has_pending() const { return ssl_ && SSL_has_pending(ssl_) == 1; }
  // One read without waiting (the socket was just reported readable): the bytes, or
  // would_block when OpenSSL needs more from the socket than it has.
  std::size_t read_now(asio::mutable_buffer buffer, error_code& ec);
  // Completes when the socket is readable (a parked TLS client; only when !has_pending()).
  template <class Handler>
  void async_wait_readable(Handler&& handler) {
    edge_wait::async_wait_readable(socket_, emptied_, std::forward<Handler>(handler));
  }

 private:
  // Waits until the socket is ready for what the failed call's SSL error (WANT_READ or
  // WANT_WRITE) asks; an error when the wait failed or the socket was closed meanwhile.
  awaitable<error_code> wait_for(int ssl_error);
  std::size_t read_once(asio::mutable_buffer buffer, error_code& ec, int& want);
  // Sees each of OpenSSL's reads of the socket (a BIO callback) and keeps emptied_.
  static long on_bio(BIO* bio, int oper, const char* argp, std::size_t len, int argi, long argl,
                     int ret, std::size_t* processed);

  tcp::socket socket_;
  SSL* ssl_ = nullptr;
  // OpenSSL's last read of the socket found it empty (EAGAIN, or fewer bytes than asked):
  // bytes can come only with a new edge, which the reactor notes (edge_wait.h). Exact, from the
  // BIO callback: OpenSSL with read-ahead may fill its buffer and leave more in the socket, so
  // a short SSL_read is no proof.
  bool emptied_ = false;
};

}  // namespace pgcutover::proxy
