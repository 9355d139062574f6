#include "providers/tls_stream.h"

namespace providers {

namespace asio = boost::asio;

TlsStream::TlsStream(TcpStream&& next, SSL_CTX* ctx, Role role)
    : next_(std::move(next)), state_(std::make_shared<State>(next_.get_executor())) {
  state_->socket = &next_.socket();
  boost::system::error_code ec;
  next_.socket().non_blocking(true, ec);  // OpenSSL calls read/write on it: they must not block
  SSL* ssl = SSL_new(ctx);
  if (!ssl || ec) {
    if (ssl) SSL_free(ssl);
    return;
  }
  SSL_set_fd(ssl, static_cast<int>(next_.socket().native_handle()));
  if (role == Role::server) SSL_set_accept_state(ssl);
  else SSL_set_connect_state(ssl);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  state_->ssl = ssl;
}

TlsStream::TlsStream(TlsStream&& other) noexcept : next_(std::move(other.next_)), state_(std::move(other.state_)) {
  state_->socket = &next_.socket();  // the socket moved with next_; the SSL keeps its descriptor
}

TlsStream::~TlsStream() {
  if (!state_) return;  // moved from
  state_->socket = nullptr;  // a wait or timer handler still queued finds the stream gone
  state_->timer.cancel();
  if (state_->ssl) SSL_free(state_->ssl);
  state_->ssl = nullptr;
}

boost::system::error_code TlsStream::failure(int ssl_error, int result, int saved_errno) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;  // the peer's close_notify
  if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    if (result == 0 || saved_errno == 0) return asio::ssl::error::stream_truncated;  // closed without close_notify
    return {saved_errno, boost::system::system_category()};
  }
  const unsigned long e = ERR_get_error();
  if (e == 0) return asio::ssl::error::unspecified_system_error;
  // OpenSSL 3 reports a close without close_notify as this error, not as SSL_ERROR_SYSCALL.
  if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return asio::ssl::error::stream_truncated;
  return {static_cast<int>(e), asio::error::get_ssl_category()};
}

void TlsStream::arm_timer(const std::shared_ptr<State>& st) {
  st->timed_out = false;
  if (!st->has_deadline) return;
  st->timer.expires_at(st->deadline);
  st->timer.async_wait([weak = std::weak_ptr<State>(st), id = st->wait_id](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || id != s->wait_id || !s->socket) return;
    s->timed_out = true;
    boost::system::error_code ignore;
    s->socket->cancel(ignore);
  });
}

}  // namespace providers
