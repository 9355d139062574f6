#pragma once
// A TLS stream (client, or the listener's server side) that holds no buffers while a connection
// waits. OpenSSL reads and writes the
// socket itself (SSL_set_fd, non-blocking) and, with SSL_MODE_RELEASE_BUFFERS, frees its record
// buffers whenever nothing is pending; the stream only waits for the socket to become readable or
// writable. Asio's ssl::stream keeps four 17 KiB buffers per connection for its whole life: with
// one upstream connection per open stream that was ~68 KiB of every TLS stream's ~77 KiB
// (tests/bench/stream_bench.sh UPSTREAM_TLS=1), and the same for every TLS client connection of
// the listener (server.tls).
//
// The stream meets Asio's AsyncReadStream / AsyncWriteStream requirements, so Beast's HTTP reads
// and writes run on it. One operation at a time (a read and a write never overlap: the upstream
// client sends, then reads; a client session answers, then reads the next request).
// Deadlines: expires_at() arms a timer for the waits of the next operations, like
// beast::basic_stream's; an expired wait completes with beast::error::timeout. An end of stream
// without close_notify is asio::ssl::error::stream_truncated, as with Asio's stream.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>

#include "core/clock.h"
#include "core/task.h"

namespace providers {

class TlsStream {
 public:
  using TcpStream = boost::beast::basic_stream<boost::asio::ip::tcp, core::Executor>;
  using executor_type = core::Executor;
  using next_layer_type = TcpStream;

  enum class Role : uint8_t { client, server };
  // Takes a connected TCP stream. `ctx` must outlive the stream.
  TlsStream(TcpStream&& next, SSL_CTX* ctx, Role role = Role::client);
  ~TlsStream();
  // Only before any operation was started (a session takes its stream by value).
  TlsStream(TlsStream&& other) noexcept;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  TlsStream& operator=(TlsStream&&) = delete;

  bool valid() const { return state_ && state_->ssl != nullptr; }  // false: SSL_new failed
  SSL* native_handle() { return state_->ssl; }
  executor_type get_executor() { return next_.get_executor(); }
  TcpStream& next_layer() { return next_; }

  // The deadline of the waits of every following operation (cleared by expires_never()).
  void expires_at(core::SteadyTime t) {
    state_->deadline = t;
    state_->has_deadline = true;
  }
  void expires_never() { state_->has_deadline = false; }

  template <class Token>
  auto async_handshake(Token&& token) {
    return run([](SSL* ssl) { return SSL_do_handshake(ssl); }, false, std::forward<Token>(token));
  }

  // Sends close_notify and does not wait for the peer's (the connection is closed next).
  template <class Token>
  auto async_shutdown(Token&& token) {
    return run([](SSL* ssl) { return SSL_shutdown(ssl) >= 0 ? 1 : -1; }, false, std::forward<Token>(token));
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer b = first_non_empty(boost::asio::buffer_sequence_begin(buffers),
                                                    boost::asio::buffer_sequence_end(buffers));
    return run([b](SSL* ssl) { return SSL_read(ssl, b.data(), static_cast<int>(std::min<size_t>(b.size(), kMaxIo))); },
               b.size() == 0, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    boost::asio::const_buffer b = first_non_empty(boost::asio::buffer_sequence_begin(buffers),
                                                  boost::asio::buffer_sequence_end(buffers));
    return run([b](SSL* ssl) { return SSL_write(ssl, b.data(), static_cast<int>(std::min<size_t>(b.size(), kMaxIo))); },
               b.size() == 0, std::forward<Token>(token));
  }

 private:
  // What the waits share with their timer handlers, which may run after the stream is gone.
  struct State {
    SSL* ssl = nullptr;
    core::SteadyTimer timer;
    core::SteadyTime deadline{};
    bool has_deadline = false;
    bool timed_out = false;
    uint64_t wait_id = 0;  // a timer handler acts only on the wait it was armed for
    TcpStream::socket_type* socket = nullptr;  // null once the stream is destroyed
    explicit State(core::Executor ex) : timer(ex) {}
  };

  // One SSL call repeated after each wait it asks for, until it succeeds or fails.
  template <class Call>
  struct Op {
    std::shared_ptr<State> st;
    Call call;
    bool empty = false;  // a zero-length read or write: done at once, as on a socket
    bool waited = false;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (waited) {
        st->timer.cancel();
        ++st->wait_id;
        if (ec == boost::asio::error::operation_aborted && st->timed_out) ec = boost::beast::error::timeout;
        if (ec) return self.complete(ec, 0);
      }
      if (empty) return self.complete({}, 0);
      if (!st->socket || !st->ssl) return self.complete(boost::asio::error::operation_aborted, 0);
      ERR_clear_error();
      const int r = call(st->ssl);
      const int saved_errno = errno;
      if (r > 0) return self.complete({}, static_cast<size_t>(r));
      const int err = SSL_get_error(st->ssl, r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        return self.complete(failure(err, r, saved_errno), 0);
      waited = true;
      arm_timer(st);
      st->socket->async_wait(err == SSL_ERROR_WANT_READ ? TcpStream::socket_type::wait_read
                                                        : TcpStream::socket_type::wait_write,
                             std::move(self));
    }
  };

  template <class Call, class Token>
  auto run(Call call, bool empty, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, size_t)>(
        Op<Call>{state_, std::move(call), empty}, token, next_.socket());
  }

  template <class It>
  static auto first_non_empty(It begin, It end) -> decltype(boost::asio::buffer(*begin)) {
    for (It it = begin; it != end; ++it)
      if (boost::asio::buffer_size(*it) > 0) return boost::asio::buffer(*it);
    return {};
  }
  // One SSL_read / SSL_write moves at most this much (a retried SSL_write must repeat its
  // arguments: the buffer given to an operation does not change while it runs).
  static constexpr size_t kMaxIo = 1 << 20;
  static boost::system::error_code failure(int ssl_error, int result, int saved_errno);
  static void arm_timer(const std::shared_ptr<State>& st);

  TcpStream next_;
  std::shared_ptr<State> state_;
};

}  // namespace providers
