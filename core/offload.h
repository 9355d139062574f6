#pragma once
// Runs a blocking call (Redis round trip) on a blocking pool when there is one, else inline; the
// I/O threads never wait on a network call they do not own.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <type_traits>

#include "core/task.h"

namespace core {

// `f` should capture by reference only (it runs before offload's frame completes).
template <class F>
Task<std::invoke_result_t<F>> offload(boost::asio::thread_pool* pool, F f) {
  using R = std::invoke_result_t<F>;
  if (!pool) co_return f();
  // Asio keeps the result in a default-constructed slot: optional<R> has one even when R does not.
  std::optional<R> r = co_await boost::asio::co_spawn(
      *pool, [f = std::move(f)]() mutable -> boost::asio::awaitable<std::optional<R>> { co_return f(); },
      use_task);
  co_return std::move(*r);
}

}  // namespace core
