#pragma once
// The coroutine type of the request path: an awaitable bound to the worker's io_context executor.
// Asio's default, any_io_executor, is type-erased: every handler, composed operation and timer
// of a request copies and destroys it (about 4k instructions per proxied request, measured with
// callgrind). The concrete executor is a pointer.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace core {

using Executor = boost::asio::io_context::executor_type;
template <class T = void>
using Task = boost::asio::awaitable<T, Executor>;
inline constexpr boost::asio::use_awaitable_t<Executor> use_task{};
using SteadyTimer = boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                      boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

}  // namespace core
