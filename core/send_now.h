#pragma once
// One non-blocking send of a buffer sequence on a TCP socket, outside Asio's reactor.
//
// An Asio write that the kernel takes at once (the usual case for a request head, an answer or a
// stream chunk) still completes through the scheduler: one more handler trip, and with one
// thread per io_context one more epoll poll before the coroutine resumes. Sending first and
// leaving only what the socket did not take to Asio's write saves both (a stream event costs a
// wake-up, a receive and this send; tests/bench/stream_bench.sh under strace -c shows it).
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstddef>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

namespace core {

// Bytes the socket took (0 with `ec` set: would_block when its send buffer is full, else the
// error). Sends at most the first 8 buffers of the sequence in one call.
template <class ConstBufferSequence>
size_t send_now(int fd, const ConstBufferSequence& buffers, boost::system::error_code& ec) {
  std::array<iovec, 8> iov{};
  size_t count = 0;
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers) && count < iov.size(); ++it) {
    const boost::asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    iov[count].iov_base = const_cast<void*>(b.data());
    iov[count].iov_len = b.size();
    ++count;
  }
  ec = {};
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) ec = boost::asio::error::would_block;
    else ec = boost::system::error_code(errno, boost::system::system_category());
    return 0;
  }
}

}  // namespace core
