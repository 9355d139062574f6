#include "providers/upstream_client.h"

#include "providers/tls_stream.h"

#include "core/block_pool.h"
#include "core/http_wire.h"
#include "providers/response_parser.h"

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <cerrno>
#include <optional>
#include <functional>
#include <tuple>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace providers {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::ErrorKind;
using core::ErrorSource;

class TlsContext {
 public:
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

core::Result<std::shared_ptr<TlsContext>> make_tls_context(const TlsSettings& settings) {
  auto t = std::make_shared<TlsContext>();
  boost::system::error_code ec;
  t->ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  // An open stream's connection is idle between events: without this OpenSSL keeps its ~34 KiB of
  // record buffers per connection for the connection's life (tests/bench/stream_bench.sh with
  // UPSTREAM_TLS=1 prints the memory per stream).
  SSL_CTX_set_mode(t->ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  t->ctx.set_default_verify_paths(ec);
  if (ec) return core::make_error(ErrorKind::internal, "cannot load the system CA store: " + ec.message());
  if (!settings.ca_file.empty()) {
    t->ctx.load_verify_file(settings.ca_file, ec);
    if (ec)
      return core::make_error(ErrorKind::internal,
                              "cannot load upstream CA file '" + settings.ca_file + "': " + ec.message());
  }
  t->ctx.set_verify_mode(asio::ssl::verify_peer);
  return t;
}

core::Result<Endpoint> parse_endpoint(std::string_view url) {
  Endpoint e;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") { e.tls = true; rest = url.substr(8); }
  else if (url.substr(0, 7) == "http://") { e.tls = false; rest = url.substr(7); }
  else return core::make_error(ErrorKind::internal, "URL '" + std::string(url) + "' must start with http:// or https://");
  auto slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  e.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  if (hostport.empty()) return core::make_error(ErrorKind::internal, "URL '" + std::string(url) + "' has no host");
  if (hostport.front() == '[') {  // IPv6 literal
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return core::make_error(ErrorKind::internal, "bad IPv6 literal in '" + std::string(url) + "'");
    e.host = std::string(hostport.substr(1, close - 1));
    auto after = hostport.substr(close + 1);
    e.port = after.size() > 1 && after[0] == ':' ? std::string(after.substr(1)) : "";
  } else {
    auto colon = hostport.rfind(':');
    e.host = std::string(hostport.substr(0, colon));
    e.port = colon == std::string_view::npos ? "" : std::string(hostport.substr(colon + 1));
  }
  if (e.port.empty()) e.port = e.tls ? "443" : "80";
  for (char c : e.port)
    if (c < '0' || c > '9') return core::make_error(ErrorKind::internal, "bad port in URL '" + std::string(url) + "'");
  for (char c : e.host)
    if (c <= ' ' || c == '@' || c == '/' || c == '?' || c == '#')
      return core::make_error(ErrorKind::internal, "bad host in URL '" + std::string(url) + "'");
  e.key = (e.tls ? "https://" : "http://") + e.host + ":" + e.port;
  e.authority = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
  if (e.port != (e.tls ? "443" : "80")) e.authority += ":" + e.port;
  return e;
}

namespace {

using TcpStream = beast::basic_stream<tcp, core::Executor>;

constexpr auto kMaxIdleAge = std::chrono::seconds(20);
constexpr int kMaxInterimResponses = 8;
constexpr size_t kReadBufferBytes = 2048;

// Blocks kept per worker for the connections' read buffers: more than are in use at once on a
// worker under a load of many thousand open streams (each holds its block only while bytes are
// being read), few enough to be negligible (512 KiB).
constexpr size_t kKeptReadBuffers = 256;

struct Connection {
  explicit Connection(core::BlockPool* blocks) : buffer(core::BlockAllocator<char>(blocks)) {}
  std::unique_ptr<TcpStream> plain;
  std::unique_ptr<TlsStream> tls;
  // Reserved to kReadBufferBytes before each read, given back while the connection waits.
  beast::basic_flat_buffer<core::BlockAllocator<char>> buffer;
  core::SteadyTime idle_since{};
  // What the buffer held while it was given back, and the byte that ended the wait: see
  // ExchangeImpl::wait_for_bytes.
  std::array<char, 16> carry{};
  char first_byte = 0;
  // Plain TCP: the last receive left room in the buffer, so the socket is taken to be empty
  // (ExchangeImpl::fill_plain).
  bool drained = false;
  // The deadline of a plain connection's wait for readability, made at its first wait.
  std::optional<core::SteadyTimer> wait_timer;
  // Status and header fields of the current exchange's response (strings reused across exchanges).
  ResponseHead head;

  TcpStream& lowest() { return tls ? tls->next_layer() : *plain; }
  // The deadline of the next reads and writes (the TLS stream waits on the socket itself).
  void expires_at(core::SteadyTime t) {
    lowest().expires_at(t);
    if (tls) tls->expires_at(t);
  }

  // Gives the read buffer back for a wait, its bytes (at most carry.size()) set aside; returns
  // how many. unpark_buffer takes a buffer again with those bytes first.
  size_t park_buffer() {
    const size_t n = asio::buffer_copy(asio::buffer(carry), buffer.data());
    buffer.clear();
    buffer.shrink_to_fit();
    return n;
  }
  void unpark_buffer(size_t carried) {
    buffer.reserve(kReadBufferBytes);
    buffer.commit(asio::buffer_copy(buffer.prepare(carried), asio::buffer(carry.data(), carried)));
  }

  // An idle pooled connection may carry nothing: bytes that arrived while it sat in the pool (an
  // unsolicited response, the rest of a body longer than its Content-Length, a TLS record) or
  // the server's close make it unfit to carry the next request. One non-blocking peek, no wait.
  bool clean_while_idle() {
    if (buffer.size() > 0) return false;
    if (tls && SSL_pending(tls->native_handle()) > 0) return false;
    char b;
    const ssize_t n = ::recv(lowest().socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

struct EndpointPool {
  std::vector<std::unique_ptr<Connection>> idle;
  size_t open = 0;
};

// Client-facing messages never name the upstream's host or port (it may be an internal address):
// those go to `log_detail`, which only the access log shows.
core::Error upstream_failure(ErrorKind kind, std::string message, std::string detail = {}) {
  core::Error e = core::make_error(kind, std::move(message), ErrorSource::upstream);
  e.log_detail = std::move(detail);
  return e;
}

// Points a request's CancelHook at what aborts the current phase (a resolve, a connect, a
// handshake, an exchange) for as long as this lives.
class CancelScope {
 public:
  CancelScope(CancelHook* hook, std::function<void()> abort) : hook_(hook) {
    if (hook_) hook_->fn = std::move(abort);
  }
  ~CancelScope() {
    if (hook_) hook_->fn = nullptr;
  }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  CancelHook* hook_;
};

bool fired(const CancelHook* hook) { return hook && hook->cancelled; }

core::Error cancelled_while(const char* phase) {
  return core::make_error(ErrorKind::cancelled, std::string("request cancelled while ") + phase, ErrorSource::client);
}

core::Error io_error(const boost::system::error_code& ec, const Endpoint& ep, const char* phase) {
  if (ec == beast::error::timeout)
    return upstream_failure(ErrorKind::timeout, std::string("upstream timed out ") + phase, ep.key);
  return upstream_failure(ErrorKind::server_error, std::string("upstream failed ") + phase + ": " + ec.message(), ep.key);
}

}  // namespace

struct UpstreamClient::Impl {
  Impl(core::Executor e, std::shared_ptr<TlsContext> t, size_t idle, size_t open)
      : ex(std::move(e)), tls(std::move(t)), max_idle(idle), max_open(open) {}
  core::Executor ex;
  std::shared_ptr<TlsContext> tls;
  size_t max_idle;
  size_t max_open;
  core::BlockPool read_buffers{kReadBufferBytes, kKeptReadBuffers};  // outlives the pooled connections
  std::map<std::string, EndpointPool> pools;  // never erased: exchanges keep references to their pool
};

namespace {

class ExchangeImpl final : public UpstreamExchange {
 public:
  // `endpoint` outlives the exchange (UpstreamClient::start's contract).
  ExchangeImpl(std::shared_ptr<UpstreamClient::Impl> client, EndpointPool& pool, std::unique_ptr<Connection> conn,
               const Endpoint& endpoint)
      : client_(std::move(client)),
        pool_(pool),
        conn_(std::move(conn)),
        ep_(endpoint) {
    new_parser();
  }

  ~ExchangeImpl() override {
    EndpointPool& pool = pool_;
    // Bytes after the end of the response (a Content-Length shorter than what was sent, an
    // unsolicited second response) are not ours to interpret: they would become the next
    // request's answer, so the connection is closed, never pooled.
    if (conn_ && done_ && !failed_ && parser_->keep_alive() && conn_->buffer.size() == 0 &&
        pool.idle.size() < client_->max_idle) {
      conn_->idle_since = std::chrono::steady_clock::now();
      conn_->buffer.shrink_to_fit();  // empty; the next exchange reserves its room again
      pool.idle.push_back(std::move(conn_));
      return;
    }
    if (conn_) {
      boost::system::error_code ec;
      conn_->lowest().socket().close(ec);
    }
    if (pool.open > 0) --pool.open;
  }

  // Valid once start() has returned this exchange (the header was read).
  int status() const override { return head_.status; }
  std::string header(std::string_view name) const override { return std::string(head_.header(name)); }

  void cancel() override {
    failed_ = true;
    if (conn_) {
      boost::system::error_code ec;
      conn_->lowest().socket().cancel(ec);
      conn_->lowest().socket().close(ec);
    }
  }

  core::Task<core::Result<std::string_view>> read_some(core::SteadyTime deadline) override {
    if (conn_->tls) co_return co_await read_some_on(*conn_->tls, deadline);
    co_return co_await read_some_on(*conn_->plain, deadline);
  }

  core::Task<core::Result<std::string>> read_all(core::SteadyTime deadline, size_t max_bytes) override {
    std::string body;
    for (;;) {
      auto piece = co_await read_some(deadline);
      if (!piece) co_return std::move(piece).error();
      if (piece->empty()) break;
      if (body.size() + piece->size() > max_bytes) {
        failed_ = true;
        co_return upstream_failure(ErrorKind::server_error,
                                   "upstream response body exceeds " + std::to_string(max_bytes) + " bytes");
      }
      body.append(*piece);
    }
    co_return body;
  }

  // Sends the request and reads the response header. `stale_ok` marks a reused connection, on which
  // a reset before any response byte means the server closed it while idle: the caller retries.
  template <class Stream>
  core::Task<boost::system::error_code> send_and_read_header(Stream& s, const UpstreamRequest& r,
                                                             core::SteadyTime header_deadline, const char*& phase) {
    // The request head is formatted into one buffer and sent with the body in one gather write.
    std::string head;
    head.reserve(256 + r.target.size());
    head += "POST ";
    for (char c : r.target)
      if (c > ' ' && c != 0x7f) head.push_back(c);
    head += " HTTP/1.1\r\n";
    core::append_known_header(head, "Host", ep_.authority);
    head += "User-Agent: llm-gateway/0.1\r\n";
    for (const auto& [k, v] : r.headers) core::append_header(head, k, v);
    core::append_content_length(head, r.body.size());
    head += "\r\n";
    std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(r.body)};
    // Beast reads max(512, free capacity) per call: without room reserved, a 600-byte answer takes
    // two reads (two system calls).
    conn_->buffer.reserve(kReadBufferBytes);
    conn_->expires_at(header_deadline);
    // A retry after a stale pooled connection writes again: that server closed it unread.
    if (r.written) *r.written = false;
    phase = "sending the request";
    // Asio's write, not core::send_now: sending at once here measured slower at saturation
    // (about 40k -> 25k requests/s through one worker, wrk -c16, an nginx upstream), while the
    // same change to the client-side writes gained; why is not settled.
    auto [wec, wn] = co_await asio::async_write(s, parts, asio::as_tuple(core::use_task));
    if (wec) co_return wec;
    if (r.written) *r.written = true;
    phase = "waiting for the response header (first byte)";
    // Interim responses (100 Continue, 103 Early Hints, ...) precede the final one; a bounded
    // number of them is skipped. 101 is final (a protocol switch this client never asks for).
    for (int interim = 0;; ++interim) {
      conn_->expires_at(header_deadline);
      auto [rec, rn] = co_await http::async_read_header(s, conn_->buffer, *parser_, asio::as_tuple(core::use_task));
      if (rec || head_.status < 100 || head_.status > 199 || head_.status == 101) co_return rec;
      if (interim == kMaxInterimResponses) {
        phase = "reading the response header (too many interim 1xx responses)";
        co_return http::error::bad_status;
      }
      new_parser();
    }
  }

  void new_parser() {
    parser_.emplace(conn_->head);
    parser_->body_limit(boost::none);
    parser_->header_limit(64 * 1024);
    parser_->eager(false);  // the body pieces it hands out are views of the read buffer: see ResponseParser
  }

  Connection& conn() { return *conn_; }
  void mark_failed() { failed_ = true; }
  bool header_done() const { return parser_->is_header_done(); }
  void mark_done_if_complete() { if (parser_->is_done()) done_ = true; }

 private:
  // One body piece: a view of the connection's read buffer, valid until the next read.
  template <class Stream>
  core::Task<core::Result<std::string_view>> read_some_on(Stream& s, core::SteadyTime deadline) {
    if (failed_) co_return upstream_failure(ErrorKind::cancelled, "upstream exchange aborted");
    for (;;) {
      if (parser_->is_done()) {
        done_ = true;
        co_return std::string_view{};
      }
      boost::system::error_code ec;
      if (conn_->buffer.size() > 0) {
        // What is buffered first, as Beast's read would: need_more means the socket must give more.
        const size_t used = parser_->put(conn_->buffer.data(), ec);
        conn_->buffer.consume(used);
        if (ec == http::error::need_buffer) ec = {};  // a second body piece was in the buffer
        if (!ec && parser_->has_piece()) co_return finish_piece();
        if (!ec && used > 0) continue;
        if (!ec) ec = http::error::need_more;  // no progress without more bytes: never spin on them
        if (ec != http::error::need_more) co_return fail(ec);
        ec = {};
      }
      if constexpr (std::is_same_v<Stream, TcpStream>) {
        // The buffer is parsed at the top of the loop, as Beast's read would.
        ec = co_await fill_plain(s, deadline);
        if (ec) co_return fail(ec);
        continue;
      } else {
        conn_->expires_at(deadline);
        ec = co_await wait_for_bytes(s);
        if (!ec && !parser_->is_done())  // done: the wait saw the close that ends the body
          std::tie(ec, std::ignore) = co_await http::async_read_some(s, conn_->buffer, *parser_,
                                                                    asio::as_tuple(core::use_task));
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return fail(ec);
      if (parser_->has_piece()) co_return finish_piece();
    }
  }

  // Plain TCP: more bytes into the buffer, read without waiting when the socket has them, else
  // after a wait for readability that holds no buffer. Per stream event that is one epoll_ctl
  // (re-arming the socket), the wake-up and one receive; Asio's read would add a receive that
  // fails with EAGAIN (its speculative attempt), and a one-byte read ending the wait another
  // receive, each with a trip through the scheduler (tests/bench/stream_bench.sh under strace -c).
  // After a receive that left room in the buffer the socket is taken to be drained and the next
  // call waits first; the re-arm reports bytes that came in between, so none are missed. An end
  // of the connection is given to the parser, which ends a body delimited by it (else errs).
  core::Task<boost::system::error_code> fill_plain(TcpStream& s, core::SteadyTime deadline) {
    Connection& c = *conn_;
    for (;;) {
      if (!c.drained) {
        boost::system::error_code ec;
        if (receive_now(s, ec) || ec != asio::error::would_block) {
          if (ec == asio::error::eof) {
            ec = {};
            parser_->put_eof(ec);
          }
          co_return ec;
        }
      }
      // Nothing to read now: wait without the buffer when what it holds fits in `carry` (see
      // wait_for_bytes), else (part of an event) with it.
      const bool release = c.buffer.size() <= c.carry.size();
      const size_t carried = release ? c.park_buffer() : 0;
      auto ec = co_await wait_readable(s, deadline);
      if (release) c.unpark_buffer(carried);
      if (ec) co_return ec;
      c.drained = false;
    }
  }

  // One non-blocking receive into the buffer's free room: true with bytes, else `ec` says why
  // (would_block: nothing there now).
  bool receive_now(TcpStream& s, boost::system::error_code& ec) {
    Connection& c = *conn_;
    const size_t room = std::max<size_t>(512, c.buffer.capacity() - c.buffer.size());
    auto space = c.buffer.prepare(room);
    for (;;) {
      const ssize_t n = ::recv(s.socket().native_handle(), space.data(), space.size(), MSG_DONTWAIT);
      if (n > 0) {
        c.buffer.commit(static_cast<size_t>(n));
        c.drained = static_cast<size_t>(n) < space.size();
        return true;
      }
      if (n == 0) ec = asio::error::eof;
      else if (errno == EINTR) continue;
      else if (errno == EAGAIN || errno == EWOULDBLOCK) ec = asio::error::would_block;
      else ec = boost::system::error_code(errno, boost::system::system_category());
      if (ec == asio::error::would_block) c.drained = true;
      return false;
    }
  }

  // Waits until the socket is readable (bytes, an end or an error), until `deadline` (then
  // Beast's timeout error, as a timed-out read gives), or until the exchange is cancelled.
  core::Task<boost::system::error_code> wait_readable(TcpStream& s, core::SteadyTime deadline) {
    Connection& c = *conn_;
    if (!c.wait_timer) c.wait_timer.emplace(s.get_executor());
    c.wait_timer->expires_at(deadline);
    auto [order, wait_ec, timer_ec] =
        co_await asio::experimental::make_parallel_group(s.socket().async_wait(tcp::socket::wait_read, asio::deferred),
                                                         c.wait_timer->async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), core::use_task);
    if (order[0] == 1) co_return timer_ec ? timer_ec : boost::system::error_code(beast::error::timeout);
    co_return wait_ec;
  }

  // The piece the last put() delivered, once what follows it in the buffer was parsed too: a
  // chunked body's last chunk (the parser stops after each chunk's data) ends the response here,
  // not at a read that a reader stopping at the end of what it expects (an SSE relay at [DONE])
  // never makes, so the connection still goes back to the pool. Only framing is parsed: the parser
  // refuses a second piece while this one is out, and the piece's bytes stay where they are.
  std::string_view finish_piece() {
    while (!parser_->is_done() && conn_->buffer.size() > 0) {
      boost::system::error_code ec;
      const size_t used = parser_->put(conn_->buffer.data(), ec);
      conn_->buffer.consume(used);
      if (ec || used == 0) break;  // a malformed byte stays buffered: the next read reports it
    }
    if (parser_->is_done()) done_ = true;
    return parser_->take_piece();
  }

  core::Error fail(const boost::system::error_code& ec) {
    failed_ = true;
    if (ec == asio::error::operation_aborted) return upstream_failure(ErrorKind::cancelled, "upstream exchange cancelled");
    return io_error(ec, ep_, "while sending the response body");
  }

  // TLS: the socket must give more: waits for its next bytes without holding a read buffer when it can.
  // An open stream spends nearly all its life between events, and every open stream holds one
  // connection: its 2 KiB block goes back to the worker's pool while it waits (memory per open
  // stream: tests/bench/stream_bench.sh). What is left in the buffer then is a few bytes at most
  // (the CRLF after a chunk, which the parser takes with the next chunk's size): it waits in
  // `carry`. The wait is a one-byte read under the read deadline (the TLS stream's own, which
  // also takes a record already on the socket at once); decrypted bytes the session holds are
  // read into the buffer as it is. (Plain TCP waits without reading: fill_plain.)
  template <class Stream>
  core::Task<boost::system::error_code> wait_for_bytes(Stream& s) {
    Connection& c = *conn_;
    // Decrypted bytes held by the TLS session are read at once (no system call tells of them).
    if (c.buffer.size() > c.carry.size() || SSL_has_pending(c.tls->native_handle())) co_return boost::system::error_code{};
    const size_t carried = c.park_buffer();
    auto [ec, n] = co_await s.async_read_some(asio::buffer(&c.first_byte, 1), asio::as_tuple(core::use_task));
    c.unpark_buffer(carried);
    if (ec == asio::error::eof) {
      // As Beast's read: the end of the connection ends a body delimited by it, else it is an error.
      ec = {};
      parser_->put_eof(ec);
      co_return ec;
    }
    if (ec) co_return ec;
    *static_cast<char*>(c.buffer.prepare(1).data()) = c.first_byte;
    c.buffer.commit(1);
    co_return boost::system::error_code{};
  }

  std::shared_ptr<UpstreamClient::Impl> client_;
  EndpointPool& pool_;
  std::unique_ptr<Connection> conn_;
  const Endpoint& ep_;
  std::optional<ResponseParser> parser_;  // fills conn_->head; rebuilt after each interim (1xx) response
  const ResponseHead& head_ = conn_->head;
  bool done_ = false;
  bool failed_ = false;
};

std::string tls_failure_detail(SSL* ssl, const boost::system::error_code& ec) {
  long v = SSL_get_verify_result(ssl);
  if (v != X509_V_OK) return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
  return ec.message();
}

core::Task<core::Result<std::unique_ptr<Connection>>> connect(core::Executor ex, TlsContext* tls, core::BlockPool* blocks,
                                                              const Endpoint& ep, const UpstreamTimeouts& t,
                                                              core::SteadyTime total_deadline, CancelHook* cancel) {
  auto now = std::chrono::steady_clock::now();
  auto connect_deadline = std::min(now + t.connect, total_deadline);
  asio::ip::basic_resolver<tcp, core::Executor> resolver(ex);
  core::SteadyTimer timer(ex);
  timer.expires_at(connect_deadline);
  timer.async_wait([&resolver](boost::system::error_code ec) {
    if (!ec) resolver.cancel();
  });
  boost::system::error_code rec;
  asio::ip::basic_resolver_results<tcp> results;
  {
    CancelScope scope(cancel, [&resolver] { resolver.cancel(); });
    std::tie(rec, results) = co_await resolver.async_resolve(ep.host, ep.port, asio::as_tuple(core::use_task));
  }
  timer.cancel();
  if (fired(cancel)) co_return cancelled_while("resolving the upstream host");
  if (rec) {
    if (rec == asio::error::operation_aborted)
      co_return upstream_failure(ErrorKind::timeout, "upstream timed out resolving its host name", ep.key);
    co_return upstream_failure(ErrorKind::server_error, "cannot resolve the upstream's host name: " + rec.message(), ep.key);
  }
  auto conn = std::make_unique<Connection>(blocks);
  TcpStream stream(ex);
  stream.expires_at(connect_deadline);
  boost::system::error_code cec;
  {
    CancelScope scope(cancel, [&stream] { stream.cancel(); });
    std::tie(cec, std::ignore) = co_await stream.async_connect(results, asio::as_tuple(core::use_task));
  }
  if (fired(cancel)) co_return cancelled_while("connecting to the upstream");
  if (cec) co_return io_error(cec, ep, "connecting");
  boost::system::error_code ignore;
  stream.socket().set_option(tcp::no_delay(true), ignore);
  if (!ep.tls) {
    // Registered with the reactor anew: the connect added EPOLLOUT to the socket's epoll events,
    // and then each wait for readability (ExchangeImpl::wait_readable re-arms them) also woke the
    // worker once for "writable", a system call per stream event (strace). Writes that must wait
    // add it back themselves.
    boost::system::error_code reg_ec;
    const tcp protocol = stream.socket().local_endpoint(reg_ec).protocol();
    if (!reg_ec) {
      const auto fd = stream.socket().release(reg_ec);
      if (!reg_ec) stream.socket().assign(protocol, fd, reg_ec);
      if (reg_ec && fd >= 0) ::close(fd);
    }
    if (reg_ec) co_return io_error(reg_ec, ep, "registering the connection");
    conn->plain = std::make_unique<TcpStream>(std::move(stream));
    co_return conn;
  }
  conn->tls = std::make_unique<TlsStream>(std::move(stream), tls->ctx.native_handle());
  if (!conn->tls->valid()) co_return upstream_failure(ErrorKind::internal, "cannot set up a TLS session", ep.key);
  SSL* ssl = conn->tls->native_handle();
  boost::system::error_code addr_ec;
  (void)asio::ip::make_address(ep.host, addr_ec);  // only whether the host is an IP literal matters
  if (addr_ec) {
    // SNI, and host-name verification against the certificate's subjectAltName.
    SSL_set_tlsext_host_name(ssl, ep.host.c_str());
    SSL_set1_host(ssl, ep.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ep.host.c_str());
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  conn->expires_at(std::min(std::chrono::steady_clock::now() + t.tls, total_deadline));
  boost::system::error_code hec;
  {
    CancelScope scope(cancel, [c = conn.get()] { c->lowest().cancel(); });
    std::tie(hec, std::ignore) = co_await conn->tls->async_handshake(asio::as_tuple(core::use_task));
  }
  if (fired(cancel)) co_return cancelled_while("in the TLS handshake with the upstream");
  if (hec) {
    if (hec == beast::error::timeout)
      co_return upstream_failure(ErrorKind::timeout, "upstream timed out in the TLS handshake", ep.key);
    co_return upstream_failure(ErrorKind::server_error,
                               "TLS handshake with the upstream failed: " + tls_failure_detail(ssl, hec), ep.key);
  }
  co_return conn;
}

}  // namespace

UpstreamClient::UpstreamClient(core::Executor executor, std::shared_ptr<TlsContext> tls,
                               size_t max_idle_per_endpoint, size_t max_open_per_endpoint)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(tls), max_idle_per_endpoint, max_open_per_endpoint)) {}

UpstreamClient::~UpstreamClient() = default;

size_t UpstreamClient::read_buffers_in_use() const { return impl_->read_buffers.in_use(); }

core::Task<core::Result<std::unique_ptr<UpstreamExchange>>> UpstreamClient::start(
    const Endpoint& endpoint, const UpstreamRequest& request, const UpstreamTimeouts& timeouts,
    core::SteadyTime total_deadline, CancelHook* cancel) {
  if (fired(cancel)) co_return cancelled_while("waiting to start the upstream request");
  // Exchanges hand connections back to the pool in their destructor, so they share the Impl.
  std::shared_ptr<Impl> impl = impl_;
  const std::string& key = endpoint.key;
  auto pool_it = impl->pools.find(key);
  if (pool_it == impl->pools.end()) pool_it = impl->pools.try_emplace(key).first;
  EndpointPool& pool = pool_it->second;
  for (int round = 0; round < 2; ++round) {
    std::unique_ptr<Connection> conn;
    bool reused = false;
    auto now = std::chrono::steady_clock::now();
    while (!pool.idle.empty()) {
      conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      if (now - conn->idle_since < kMaxIdleAge && conn->clean_while_idle()) {
        reused = true;
        break;
      }
      boost::system::error_code ignore;
      conn->lowest().socket().close(ignore);
      conn.reset();
      if (pool.open > 0) --pool.open;
    }
    if (!conn) {
      if (pool.open >= impl->max_open)
        co_return upstream_failure(ErrorKind::overloaded,
                                   "upstream connection pool is full (" + std::to_string(impl->max_open) + " open)", key);
      ++pool.open;
      auto c = co_await connect(impl->ex, impl->tls.get(), &impl->read_buffers, endpoint, timeouts, total_deadline, cancel);
      if (!c) {
        if (pool.open > 0) --pool.open;
        co_return std::move(c).error();
      }
      conn = std::move(c).value();
      ++stats_.connects;
      if (endpoint.tls) ++stats_.tls_handshakes;
    } else {
      ++stats_.reuses;
    }
    auto ex = std::make_unique<ExchangeImpl>(impl, pool, std::move(conn), endpoint);
    auto header_deadline = std::min(std::chrono::steady_clock::now() + timeouts.first_byte, total_deadline);
    const char* phase = "";
    boost::system::error_code ec;
    {
      CancelScope scope(cancel, [e = ex.get()] { e->cancel(); });
      if (ex->conn().tls) ec = co_await ex->send_and_read_header(*ex->conn().tls, request, header_deadline, phase);
      else ec = co_await ex->send_and_read_header(*ex->conn().plain, request, header_deadline, phase);
    }
    if (fired(cancel)) {
      ex->mark_failed();
      co_return cancelled_while(phase);
    }
    if (!ec) {
      ex->mark_done_if_complete();
      co_return std::unique_ptr<UpstreamExchange>(std::move(ex));
    }
    ex->mark_failed();
    bool stale = reused && !ex->header_done() && ec != beast::error::timeout &&
                 (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                  ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated);
    if (stale && round == 0) continue;  // the server closed the idle connection: one fresh try
    co_return io_error(ec, endpoint, phase);
  }
  co_return upstream_failure(ErrorKind::server_error, "upstream keeps closing connections", key);
}

}  // namespace providers
