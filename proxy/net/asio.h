// Asio names used across the data plane, in one place. Include only from .cpp files and from
// headers of coroutine-heavy classes: Boost.Asio is slow to compile.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgcutover::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;

// Errors as values, not exceptions, on the data plane (STYLE.md).
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace pgcutover::proxy
