// Waiting for a socket to turn readable without re-arming epoll each time: one system call less
// per wait, two per statement on the relay (the parked client's wait and the pooled server
// connection's wait for the answer).
//
// Asio's async_wait(wait_read) re-arms the descriptor every time (EPOLL_CTL_MOD): epoll is
// edge-triggered, and bytes that arrived before the wait, whose edge the reactor has already
// taken, would never be announced again. The re-arm is needed only when such bytes can exist,
// and the reactor knows when they can: an edge that finds no operation waiting sets the
// descriptor's "try speculative" flag, and an operation started as speculative is attempted at
// once while that flag is set. So:
//  - a read of ours that empties the socket (a short recv, or EAGAIN) clears the flag
//    (note_read): from then on only a new edge sets it;
//  - the wait starts as a speculative operation whose attempt is "ready" (async_wait_readable):
//    flag set (an edge came since the drain) -> the wait completes at once; flag clear -> the
//    wait is queued without a system call, and the next edge completes it.
// The caller says whether its last read emptied the socket; when it did not (or cannot tell),
// the wait is Asio's own.
//
// This reaches into Asio's detail interface (the epoll reactor and its per-descriptor state),
// which changes between Boost versions. It is compiled for Boost 1.81 with the epoll reactor,
// Debian 12's; with anything else both functions fall back to Asio's async_wait.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_socket.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <boost/version.hpp>

#include "proxy/net/asio.h"

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_HAS_IOCP)
#define PGCUTOVER_EDGE_WAIT 1
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/reactive_wait_op.hpp>
#else
#define PGCUTOVER_EDGE_WAIT 0
#endif

namespace pgcutover::proxy::edge_wait {

#if PGCUTOVER_EDGE_WAIT
namespace detail {

using Reactor = boost::asio::detail::epoll_reactor;

// Clears the descriptor's "try speculative" flag for reads, under its lock (edge_wait.cpp).
void clear_read_flag(Reactor::per_descriptor_data state);
// The reactor of the execution context the socket runs on.
Reactor& reactor_of(boost::asio::execution_context& context);

// The socket's implementation (descriptor, reactor state): a protected member of basic_socket,
// named through a class derived from it.
template <class Socket>
struct ImplOf : Socket {
  static auto& of(Socket& socket) { return socket.*(&ImplOf::impl_); }
};

template <class Socket, class Handler>
void start_wait(Socket& socket, Handler& handler) {
  auto& io = ImplOf<Socket>::of(socket);
  auto& impl = io.get_implementation();
  using Op = boost::asio::detail::reactive_wait_op<Handler, typename Socket::executor_type>;
  bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
  typename Op::ptr p = {boost::asio::detail::addressof(handler), Op::ptr::allocate(handler), 0};
  p.p = new (p.v) Op(error_code{}, handler, io.get_executor());
  Reactor& reactor = reactor_of(asio::query(socket.get_executor(), asio::execution::context));
  reactor.start_op(Reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation,
                   /*allow_speculative=*/true);
  p.v = p.p = 0;
}

}  // namespace detail
#endif

// After each read of ours on the socket (a recv, or OpenSSL's): whether it left the socket
// empty (EAGAIN, or fewer bytes than asked), told to the reactor when it did. The caller keeps
// the answer as its next wait's `drained`.
template <class Socket>
bool note_read(Socket& socket, bool would_block, std::size_t asked, std::size_t got) {
  bool emptied = would_block || (got > 0 && got < asked);
#if PGCUTOVER_EDGE_WAIT
  if (emptied)
    detail::clear_read_flag(detail::ImplOf<Socket>::of(socket).get_implementation().reactor_data_);
#else
  (void)socket;
#endif
  return emptied;
}

// Completes when the socket is readable (or at once, when bytes may be waiting). `drained`: the
// last read of the socket emptied it, as note_read answered; otherwise, and for a
// handler with a cancellation slot, this is socket.async_wait(wait_read).
template <class Socket, class Token>
auto async_wait_readable(Socket& socket, bool drained, Token&& token) {
  return asio::async_initiate<Token, void(error_code)>(
      [&socket, drained](auto handler) {
#if PGCUTOVER_EDGE_WAIT
        if (drained && !asio::get_associated_cancellation_slot(handler).is_connected()) {
          detail::start_wait(socket, handler);
          return;
        }
#else
        (void)drained;
#endif
        socket.async_wait(Socket::wait_read, std::move(handler));
      },
      token);
}

}  // namespace pgcutover::proxy::edge_wait
