// One byte stream type for both sides of the proxy, whatever the transport: plain TCP, TLS over
// TCP (TlsSocket: OpenSSL on the descriptor) or a Unix socket. The relay is written once against
// this class.
#pragma once

#include <memory>
#include <string>
#include <tuple>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "proxy/net/asio.h"
#include "proxy/net/edge_wait.h"
#include "proxy/net/tls_socket.h"

namespace pgcutover::proxy {

class Stream {
 public:
  explicit Stream(tcp::socket socket);
  explicit Stream(asio::local::stream_protocol::socket socket);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Connects a plain TCP stream (the first one of `endpoints` that answers).
  awaitable<error_code> connect(const tcp::resolver::results_type& endpoints);
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buffer);
  // Bytes wait inside the stream object itself (on TLS, decrypted or read ahead by OpenSSL),
  // where no readiness of the socket will announce them. No system call.
  bool buffered() const;
  // One read without waiting, for a socket just reported readable (a parked wait completed):
  // the bytes, EOF as asio::error::eof, or would_block (then read_some). No coroutine, no
  // completion to post: the parked client's bytes are in the buffer when the relay starts.
  std::size_t read_now(asio::mutable_buffer buffer, error_code& ec);
  // Completes when the socket becomes readable, without a buffer: a parked client waits here
  // holding none (ClientSession::park). Call only when !buffered(). Bytes that came before the
  // wait are not missed: when the last read emptied the socket, only a new edge can bring bytes
  // and the reactor notes it (edge_wait.h: no system call to start the wait); otherwise the
  // wait re-arms the descriptor (EPOLL_CTL_MOD), and the kernel reports one that is already
  // readable at once.
  template <class Handler>
  void async_wait_read(Handler&& handler) {
    switch (transport_.index()) {
      case 0:
        edge_wait::async_wait_readable(std::get<0>(transport_), drained_,
                                       std::forward<Handler>(handler));
        return;
      case 1:
        edge_wait::async_wait_readable(std::get<1>(transport_), drained_,
                                       std::forward<Handler>(handler));
        return;
      default:
        std::get<2>(transport_)->async_wait_readable(std::forward<Handler>(handler));
        return;
    }
  }
  // Writes the whole buffer.
  awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer);

  // Server-side TLS handshake (the proxy terminating a client's TLS). Only on plain TCP.
  awaitable<error_code> tls_accept(asio::ssl::context& ctx);
  // Client-side TLS handshake to a backend. `verify_host` (non-empty) checks the certificate's
  // host name (sslmode=verify-full); `sni` is sent as server name indication when a name.
  awaitable<error_code> tls_connect(asio::ssl::context& ctx, const std::string& sni,
                                    const std::string& verify_host);

  bool is_tls() const { return std::holds_alternative<Tls>(transport_); }
  bool is_unix() const {
    return std::holds_alternative<asio::local::stream_protocol::socket>(transport_);
  }
  // Closes the socket at once: pending operations complete with operation_aborted.
  void close();
  // Reads and drops what the peer has sent and nobody read (at most 64 KiB, never waiting):
  // closing a socket with unread bytes makes the kernel send a reset, which can destroy the
  // last answer (a FATAL error) before the client reads it.
  void discard_unread();
  // Cancels pending operations without closing (they complete with operation_aborted).
  void cancel();
  // The server sent something unsolicited or closed (poll without blocking): a pooled
  // connection for which this is true must not be handed out.
  bool readable_or_closed();
  std::string peer() const;  // "ip:port" or "unix", for logs

 private:
  int descriptor();  // the socket's, -1 when closed
  // As much of the buffer as a plain socket takes without waiting (all of it, mostly); `ec` set
  // only on a failure, never for a full socket buffer. Plain TCP and Unix sockets only.
  std::size_t send_now(asio::const_buffer buffer, error_code& ec);

  // After a read of ours on a plain socket: whether it left the socket empty (a short read, or
  // EAGAIN), told to the reactor when it did (edge_wait.h). TlsSocket keeps its own.
  void note_read(std::size_t asked, std::size_t got, const error_code& ec);

  using Tls = std::unique_ptr<TlsSocket>;
  std::variant<tcp::socket, asio::local::stream_protocol::socket, Tls> transport_;
  bool drained_ = false;
};

}  // namespace pgcutover::proxy
