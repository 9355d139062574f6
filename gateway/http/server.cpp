#include "gateway/http/server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <openssl/crypto.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <list>
#include <optional>
#include <random>
#include <thread>

#include "gateway/admin/admin_state.h"
#include "gateway/admin/suspension_api.h"
#include "gateway/observe/suspension_metrics.h"
#include "routing/what_if.h"
#include "gateway/admin/ui_assets.h"
#include "gateway/api/stored_responses.h"
#include "gateway/api/anthropic_messages_surface.h"
#include "gateway/api/openai_responses_surface.h"
#include "gateway/api/embeddings_surface.h"
#include "providers/tls_stream.h"
#include "gateway/api/model_list.h"
#include "gateway/api/openai_chat_surface.h"
#include "gateway/pipeline/pipeline.h"
#include "core/http_wire.h"
#include "gateway/state/auth.h"
#include "gateway/state/limits_redis.h"
#include "core/offload.h"
#include "core/send_now.h"
#include "gateway/http/sweep_table.h"
#include "gateway/api/openai_chat.h"
#include "gateway/observe/prometheus_feed.h"
#include "gateway/http/request_parser.h"
#include "routing/catalog_report.h"
#include <prometheus/metric_family.h>
#include <map>

namespace gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TcpStream = beast::basic_stream<tcp, core::Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, core::Executor>;

namespace {

// "req_" and 16 hex digits of a per-thread random number, written over `id` (reusing its capacity).
void new_request_id(std::string& id) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t v = rng();
  id.assign(20, '0');
  id[0] = 'r', id[1] = 'e', id[2] = 'q', id[3] = '_';
  for (int i = 19; i >= 4; --i, v >>= 4) id[i] = "0123456789abcdef"[v & 15];
}

std::string new_request_id() {
  std::string id;
  new_request_id(id);
  return id;
}

bool sane_request_id(std::string_view v) {
  if (v.empty() || v.size() > 128) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
}

struct Worker;

// Per-connection state common to plain and TLS sessions, known to the worker for draining.
struct SessionBase {
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
  // Called by the worker's sweep: cancels the client I/O in progress if its deadline has passed,
  // and follows up the disconnect watch's probe (see Session::Probe).
  virtual void on_sweep(std::chrono::steady_clock::time_point now) = 0;
  // Cancels the request in progress, if any, because the drain deadline has passed.
  virtual void abort_for_drain() = 0;
};

// Client-side deadlines are checked by one sweep per worker every kDeadlineSweep, not by a timer
// per read or write: Beast's stream timeouts arm and cancel a timer around every operation (four
// timer-queue operations per request, and a timerfd_settime system call per request at low load).
// A deadline therefore fires up to kDeadlineSweep late.
constexpr auto kDeadlineSweep = std::chrono::milliseconds(100);
constexpr auto kNoDeadline = std::chrono::steady_clock::time_point::max();
// After the drain deadline: time for the requests it ended to write their error events.
constexpr auto kDrainGrace = std::chrono::milliseconds(1000);

// Bytes of request bodies being received or held by their handlers, summed over every connection
// of every worker: without it, max_connections bodies of max_body_bytes each could be buffered.
struct BodyBudget {
  std::atomic<size_t> used{0};
  size_t limit = 0;

  bool reserve(size_t n) {
    size_t cur = used.load(std::memory_order_relaxed);
    do {
      if (n > limit || cur > limit - n) return false;
    } while (!used.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
  }
  void release(size_t n) { used.fetch_sub(n, std::memory_order_relaxed); }
};

struct Worker {
  // One thread per io_context, and no socket or timer of a worker is touched from another thread
  // (other threads post to it), so the reactor's per-socket locks are not needed.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  core::SteadyTimer sweeper{ioc.get_executor()};  // client deadlines, see kDeadlineSweep
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<providers::UpstreamClient> upstream;
  std::list<SessionBase*> sessions;
  SweepTable<SessionBase> sweep_table;  // the sessions' deadlines, for sweep_deadlines
  std::thread thread;
  BodyBudget* body_budget = nullptr;  // shared by every worker, owned by Server::Impl
};

// Every kDeadlineSweep: deadlines and disconnect watches of the worker's sessions.
void sweep_deadlines(Worker& w) {
  w.sweeper.expires_after(kDeadlineSweep);
  w.sweeper.async_wait([&w](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    w.sweep_table.sweep(now, [now](SessionBase* s) { s->on_sweep(now); });
    sweep_deadlines(w);
  });
}

struct WatchState {
  bool stopped = false;
  providers::CancelHook* hook = nullptr;
};

template <class Stream>
class Session final : public SessionBase, public ClientIo {
 public:
  Session(App& app, Worker& worker, Stream stream, std::atomic<size_t>& open)
      : app_(app), worker_(worker), stream_(std::move(stream)), open_(open) {
    it_ = worker_.sessions.insert(worker_.sessions.end(), this);
    slot_ = worker_.sweep_table.add(this);
    app_.metrics.open_connections().Increment();
  }
  ~Session() override {
    release_body();
    worker_.sessions.erase(it_);
    worker_.sweep_table.remove(slot_);
    app_.metrics.open_connections().Decrement();
    open_.fetch_sub(1);
  }

  static core::Task<void> run(std::unique_ptr<Session> self) { co_await self->serve(); }

  // ClientIo
  core::Task<bool> respond(int status, std::string_view content_type, std::string body) override {
    std::string& out = out_;
    out.clear();
    core::append_status_line(out, status);
    core::append_known_header(out, "Content-Type", content_type);
    out += "Server: llm-gateway\r\n";
    bool has_retry_signal = false;
    for (size_t i = 0; i < nheaders_; ++i) {
      const auto& [k, v] = headers_[i];
      core::append_header(out, k, v);
      has_retry_signal |= beast::iequals(k, "retry-after") || beast::iequals(k, "x-should-retry");
    }
    // A handler that knows when to retry (budget reset, cooldown) has set Retry-After already, and
    // one that knows retrying is pointless has said x-should-retry: false.
    if ((status == 503 || status == 429) && !has_retry_signal) out += "Retry-After: 1\r\n";
    const bool ka = keep_alive_ && !app_.draining.load();
    if (!ka) out += "Connection: close\r\n";
    else if (http10_) out += "Connection: keep-alive\r\n";
    core::append_content_length(out, body.size());
    out += "\r\n";
    status_ = status;
    committed_ = true;
    std::array<asio::const_buffer, 2> parts{asio::buffer(out), asio::buffer(body)};
    if (auto ec = co_await write_out(parts)) { keep_alive_ = false; co_return false; }
    if (!ka) keep_alive_ = false;
    co_return true;
  }

  // The header list is reused from request to request: strings keep their capacity, so after the
  // first requests of a connection setting headers allocates nothing.
  void set_header(std::string_view name, std::string_view value) override {
    for (size_t i = 0; i < nheaders_; ++i)
      if (headers_[i].first == name) { headers_[i].second = value; return; }
    if (nheaders_ == headers_.size()) headers_.emplace_back();
    headers_[nheaders_].first = name;
    headers_[nheaders_].second = value;
    ++nheaders_;
  }

  bool committed() const override { return committed_; }

  // One chunk of the chunked stream: size line, prefix, payload, suffix, CRLF, in one write.
  core::Task<bool> write_chunk(std::string_view prefix, std::string_view payload, std::string_view suffix) {
    std::string& out = out_;
    if (!committed_) {
      out.clear();
      core::append_status_line(out, 200);
      out += "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nServer: llm-gateway\r\n"
             "X-Accel-Buffering: no\r\n";
      for (size_t i = 0; i < nheaders_; ++i) core::append_header(out, headers_[i].first, headers_[i].second);
      const bool ka = keep_alive_ && !app_.draining.load();
      if (!ka) {
        keep_alive_ = false;
        out += "Connection: close\r\n";
      }
      out += "Transfer-Encoding: chunked\r\n";
      out += "\r\n";
      committed_ = true;
      streaming_ = true;
      status_ = 200;
    } else {
      out.clear();
    }
    core::append_chunk_size(out, prefix.size() + payload.size() + suffix.size());
    out += prefix;
    std::string tail(suffix);
    tail += "\r\n";
    std::array<asio::const_buffer, 3> parts{asio::buffer(out), asio::buffer(payload.data(), payload.size()),
                                            asio::buffer(tail)};
    if (auto ec = co_await write_out(parts)) { broken_ = true; keep_alive_ = false; co_return false; }
    if (out.capacity() > kChunkFramingBytes) release_head_storage();
    co_return true;
  }

  // Writes `parts` whole, under the write deadline. Plain TCP sends first without waiting
  // (core/send_now.h): a socket that takes it all needs no trip through Asio; the rest, if any,
  // goes by Asio's write.
  template <class Buffers>
  core::Task<boost::system::error_code> write_out(const Buffers& parts) {
    size_t sent = 0;
    if constexpr (std::is_same_v<Stream, TcpStream>) {
      boost::system::error_code ec;
      sent = core::send_now(lowest().socket().native_handle(), parts, ec);
      if (ec && ec != asio::error::would_block) co_return ec;
      if (sent == asio::buffer_size(parts)) co_return boost::system::error_code{};
    }
    beast::buffers_suffix<Buffers> rest(parts);
    rest.consume(sent);
    arm(app_.config.server.write_timeout);
    writing_ = true;
    auto [ec, n] = co_await asio::async_write(stream_, rest, asio::as_tuple(core::use_task));
    writing_ = false;
    disarm();
    co_return ec;
  }

  // The stream's head is written: its header lines and the room it took are given back for the
  // stream's life (memory per open stream, tests/bench/stream_bench.sh); what frames the chunks
  // after it fits in the string itself.
  static constexpr size_t kChunkFramingBytes = 64;
  void release_head_storage() {
    std::string().swap(out_);
    decltype(headers_)().swap(headers_);
    nheaders_ = 0;
  }

  core::Task<bool> send(std::string_view data) override {
    if (broken_) co_return false;
    co_return co_await write_chunk("data: ", data, "\n\n");
  }

  // A named event. The name loses any CR/LF, and data spanning lines goes out as one data: line
  // per line, so nothing an upstream sends can forge an event boundary.
  core::Task<bool> send_event(std::string_view event, std::string_view data) override {
    if (broken_) co_return false;
    std::string prefix = "event: ";
    for (char c : event)
      if (c != '\r' && c != '\n') prefix += c;
    prefix += "\ndata: ";
    if (data.find_first_of("\r\n") == std::string_view::npos) co_return co_await write_chunk(prefix, data, "\n\n");
    std::string lines;
    for (char c : data) {
      if (c == '\r') continue;
      lines += c;
      if (c == '\n') lines += "data: ";
    }
    co_return co_await write_chunk(prefix, lines, "\n\n");
  }

  core::Task<bool> send_comment(std::string_view text) override {
    if (broken_ || !committed_) co_return false;
    co_return co_await write_chunk(": ", text, "\n\n");
  }

  core::Task<bool> end_stream() override {
    if (broken_) co_return false;
    static constexpr std::string_view last = "0\r\n\r\n";
    auto ec = co_await write_out(asio::buffer(last.data(), last.size()));
    streaming_ = false;  // the stream is over: nothing, not even a probe, may follow its last chunk
    if (ec) { broken_ = true; keep_alive_ = false; co_return false; }
    co_return true;
  }

  // While a request is handled (from the end of its body to the end of its response, whatever
  // phase it is in), the client socket is watched so that a client that leaves cancels the
  // upstream work. The watch starts at the next deadline sweep, not at once: most requests end
  // before it, and for them the watch's receive (which fails: the socket was just emptied) and
  // its cancelled completion (a trip through the scheduler) were a fifth of the system calls per
  // proxied request (tests/bench/syscalls_bench.sh). A client that leaves is noticed within
  // kDeadlineSweep, or at once by the write that fails.
  void watch_disconnect(providers::CancelHook* hook) override {
    watch_hook_ = hook;
    watch_due_ = true;
    set_probe(Probe::none);
  }

  // A one-byte MSG_PEEK receive, queued on the socket like any read: it completes when the client
  // closes (eof), resets (error) or sends more (a pipelined request, left in the socket for the
  // next read). Unlike async_wait, a queued read needs no epoll_ctl to re-arm the descriptor.
  void start_watch() {
    watch_ = std::make_shared<WatchState>();
    watch_->hook = watch_hook_;
    // `this` outlives a watch that is not stopped: stop_watch() runs before the request ends.
    lowest().socket().async_receive(asio::buffer(&peek_byte_, 1), tcp::socket::message_peek,
                                    [this, st = watch_](boost::system::error_code ec, size_t) {
                                      if (st->stopped || ec == asio::error::operation_aborted) return;
                                      on_watch(ec);
                                    });
  }

  void stop_watch() override {
    watch_hook_ = nullptr;
    watch_due_ = false;
    set_probe(Probe::none);
    if (!watch_) return;
    watch_->stopped = true;
    watch_->hook = nullptr;
    boost::system::error_code ec;
    lowest().socket().cancel(ec);  // only the wait is pending here
    watch_.reset();
  }

  void release_request_body() override { release_body(); }

  // The drain deadline passed: the request in progress ends now (a stream with its in-band error).
  void abort_for_drain() override {
    if (watch_hook_) watch_hook_->cancel(providers::CancelHook::Reason::drain);
  }

  void on_sweep(std::chrono::steady_clock::time_point now) override {
    if (now >= worker_.sweep_table.deadline(slot_)) {
      worker_.sweep_table.set_deadline(slot_, kNoDeadline);
      timed_out_ = true;
      boost::system::error_code ec;
      lowest().socket().cancel(ec);  // the pending operation completes with operation_aborted
      return;
    }
    if (watch_due_) {
      watch_due_ = false;
      set_probe(probe_);  // no call wanted any more, unless for a probe
      start_watch();
      return;
    }
    if (probe_ != Probe::none && watch_hook_) check_probe();
  }

  void close_if_idle() override {
    if (idle_ && !awaiting_first_) {
      boost::system::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      lowest().close();
    }
  }

 private:
  TcpStream& lowest() { return beast::get_lowest_layer(stream_); }

  // A deadline for the client read or write about to start; disarm() once it completes.
  void arm(std::chrono::steady_clock::duration d) {
    worker_.sweep_table.set_deadline(slot_, std::chrono::steady_clock::now() + d);
    timed_out_ = false;
  }
  void disarm() { worker_.sweep_table.set_deadline(slot_, kNoDeadline); }
  // Whether an operation failed because the sweep cancelled it at its deadline.
  bool timed_out(const boost::system::error_code& ec) const { return ec == asio::error::operation_aborted && timed_out_; }

  // The client's end of the connection as the disconnect watch sees it. An end of stream is a client
  // that left or one that only half-closed after sending its request (and still reads): the two
  // look the same until something is written, so the watch writes a probe the client ignores (an
  // interim 102 before the response, an SSE comment inside a stream) and a client that is gone
  // answers it with a reset. Data after the request (a pipelined request, a TLS record such as
  // close_notify) cannot be peeked past, so the sweep then asks the kernel whether the peer shut
  // its side down.
  enum class Probe : uint8_t {
    none,    // nothing seen yet (or no watch)
    wanted,  // end of stream seen, probe not written yet (a write was in progress)
    sent,    // probe written: a reset now means the client is gone
    poll,    // data after the request: the sweep polls for the peer's shutdown
  };
  // Every change of probe_ goes through here: a probe in flight is followed up by each sweep.
  void set_probe(Probe p) {
    probe_ = p;
    worker_.sweep_table.set_wants_call(slot_, p != Probe::none || watch_due_);
  }

  void client_gone() {
    set_probe(Probe::none);
    if (watch_hook_) watch_hook_->cancel(providers::CancelHook::Reason::client_gone);
  }

  void on_watch(const boost::system::error_code& ec) {
    if (!ec) {
      set_probe(Probe::poll);
      return;
    }
    // HTTP/1.0 clients may not be sent interim responses; a TLS probe would need the TLS layer.
    constexpr bool tls = !std::is_same_v<Stream, TcpStream>;
    if (ec != asio::error::eof || tls || http10_) return client_gone();
    // No request follows an end of stream; and Asio, having seen the socket exhausted, would not
    // even try the next read until a new readiness event that never comes.
    keep_alive_ = false;
    set_probe(Probe::wanted);
    write_probe();
  }

  void write_probe() {
    if (writing_) return;  // that write reports a client that left; the sweep probes after it
    if (committed_ && !streaming_) { set_probe(Probe::none); return; }  // the whole response is written
    static constexpr std::string_view kInterim = "HTTP/1.1 102 Processing\r\n\r\n";
    static constexpr std::string_view kComment = "2\r\n:\n\r\n";  // an empty SSE comment line
    const std::string_view probe = committed_ ? kComment : kInterim;
    const ssize_t n = ::send(lowest().socket().native_handle(), probe.data(), probe.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // send buffer full: next sweep
    if (n != static_cast<ssize_t>(probe.size())) return client_gone();  // reset, or a torn probe
    set_probe(Probe::sent);
    check_probe();  // on loopback the reset is usually back already
  }

  void check_probe() {
    if (probe_ == Probe::wanted) return write_probe();
    pollfd p{lowest().socket().native_handle(), POLLRDHUP, 0};
    if (::poll(&p, 1, 0) != 1) return;
    if (p.revents & (POLLERR | POLLHUP)) return client_gone();
    if (probe_ == Probe::poll && (p.revents & POLLRDHUP)) {
      if constexpr (!std::is_same_v<Stream, TcpStream>) return client_gone();
      else if (http10_) return client_gone();
      keep_alive_ = false;
      set_probe(Probe::wanted);
      write_probe();
    }
  }

  // Feeds the parser what the buffer holds of the body; an error other than needing more input.
  static beast::error_code parse_buffered(RequestParser& parser, beast::flat_buffer& buffer) {
    parser.eager(true);
    beast::error_code ec;
    while (!parser.is_done() && buffer.size() > 0) {
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_more) return {};
      if (ec || used == 0) return ec;
    }
    return ec;
  }

  // Reads one request (header, admission, 100-continue, body) into req_; false: the connection
  // ends (with the error answer, if any, sent). A coroutine of its own so that its frame (the
  // parser and the state of every read) is gone while the request is handled and streamed.
  core::Task<bool> read_request(beast::flat_buffer& buffer, bool first) {
    RequestParser parser(req_);
    parser.body_limit(app_.config.server.max_body_bytes);
    parser.header_limit(64 * 1024);
    idle_ = buffer.size() == 0;
    awaiting_first_ = first;  // bounded by header_timeout, not closed as idle by the drain
    arm(first ? app_.config.server.header_timeout : app_.config.server.keepalive_idle);
    auto [hec, hn] = co_await http::async_read_header(stream_, buffer, parser, asio::as_tuple(core::use_task));
    const bool header_timed_out = timed_out(hec);
    disarm();
    idle_ = false;
    nheaders_ = 0;
    committed_ = false;
    streaming_ = false;
    if (hec) {
      if (header_timed_out) {
        if (buffer.size() > 0) co_await error_response(408, core::ErrorKind::timeout, "request header timeout");
        co_return false;
      }
      if (hec == http::error::end_of_stream || hec == asio::error::operation_aborted || hec == asio::error::eof ||
          hec == asio::error::connection_reset || hec == asio::error::bad_descriptor)
        co_return false;
      if (hec == http::error::header_limit) {
        co_await error_response(431, core::ErrorKind::bad_request, "request headers are too large (limit 64 KiB)");
        co_return false;
      }
      if (hec == http::error::body_limit) {
        co_await too_large(parser);
        co_return false;
      }
      co_await error_response(400, core::ErrorKind::bad_request, "malformed HTTP request: " + hec.message());
      co_return false;
    }
    if (!co_await admit_before_body(parser)) co_return false;
    if (beast::iequals(req_.header("expect"), "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      arm(app_.config.server.write_timeout);
      auto [cec, cn] = co_await http::async_write(stream_, cont, asio::as_tuple(core::use_task));
      disarm();
      if (cec) co_return false;
    }
    // Usually the body came with the header and is in the buffer already: parsed here, it costs no
    // trip through the scheduler (Beast posts the completion of a read it needs no I/O for).
    beast::error_code bec = parse_buffered(parser, buffer);
    bool body_timed_out = false;
    if (!bec && !parser.is_done()) {
      arm(app_.config.server.body_timeout);
      auto [rec, rn] = co_await http::async_read(stream_, buffer, parser, asio::as_tuple(core::use_task));
      bec = rec;
      body_timed_out = timed_out(bec);
      disarm();
    }
    if (bec) {
      if (bec == http::error::body_limit) co_await too_large(parser);
      else if (body_timed_out) co_await error_response(408, core::ErrorKind::timeout, "request body timeout");
      else if (bec != http::error::end_of_stream && bec != asio::error::eof && bec != asio::error::connection_reset)
        co_await error_response(400, core::ErrorKind::bad_request, "malformed HTTP request body: " + bec.message());
      co_return false;
    }
    keep_alive_ = req_.keep_alive;
    http10_ = req_.version == 10;
    co_return true;
  }

  core::Task<void> serve() {
    if constexpr (!std::is_same_v<Stream, TcpStream>) {
      arm(app_.config.server.header_timeout);
      auto [ec, n] = co_await stream_.async_handshake(asio::as_tuple(core::use_task));
      disarm();
      if (ec) co_return;
    }
    beast::flat_buffer buffer;
    bool first = true;
    // While draining, a connection accepted meanwhile still gets one answer (health checks see 503
    // on /readyz); kept-alive connections end after their current request.
    while (keep_alive_ && (first || !app_.draining.load())) {
      const bool was_first = first;
      first = false;
      if (!co_await read_request(buffer, was_first)) break;
      // What the client pipelined stays (usually nothing); the room the body took is given back,
      // so that a long stream does not hold its request's read buffer.
      if (buffer.size() == 0) buffer.shrink_to_fit();
      co_await handle();
      release_body();
    }
    boost::system::error_code ec;
    if constexpr (std::is_same_v<Stream, TcpStream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    } else {
      if (!broken_) {
        // A TLS close_notify, bounded: a peer that vanished must not hold the session.
        arm(std::chrono::seconds(2));
        co_await stream_.async_shutdown(asio::as_tuple(core::use_task));
        disarm();
      }
    }
  }

  // A body over the limit is refused as soon as that is known (from its Content-Length, or while
  // reading it). The client is usually still sending: the rest is read and dropped, as after any
  // refusal before the body, so that it reads the 413 instead of a reset. Bounded like that drain
  // in time; in bytes by what the client declared, at most kMaxDiscardBytes.
  core::Task<void> too_large(const RequestParser& parser) {
    keep_alive_ = false;
    co_await error_response(413, core::ErrorKind::payload_too_large,
                            "request body exceeds the limit of " + std::to_string(app_.config.server.max_body_bytes) + " bytes");
    constexpr uint64_t kMaxDiscardBytes = 64ull << 20;
    co_await discard_unread_body(std::min(parser.content_length().value_or(0), kMaxDiscardBytes));
  }

  core::Task<void> error_response(int status, core::ErrorKind kind, std::string msg) {
    keep_alive_ = false;
    core::Error e = core::make_error(kind, std::move(msg), core::ErrorSource::client);
    if (nheaders_ == 0) set_header("x-request-id", new_request_id());
    co_await respond(status, "application/json", error_body(e, request_path()));
  }

  std::string_view request_path() const {
    std::string_view target = req_.target;
    return target.substr(0, target.find('?'));
  }
  // The Anthropic Messages paths answer errors in Anthropic's shape and statuses (its SDKs parse
  // them: 529 for overloaded); every other path in OpenAI's.
  static bool anthropic_api(std::string_view path) { return path.rfind("/v1/messages", 0) == 0; }
  static std::string error_body(const core::Error& e, std::string_view path) {
    return anthropic_api(path) ? anthropic_error_json(e) : error_json(e);
  }
  static int error_status(const core::Error& e, std::string_view path) {
    return anthropic_api(path) ? anthropic_status(e) : e.http_status();
  }

  // The request just parsed into req_; it stays untouched until this returns.
  core::Task<void> handle() {
    const auto t0 = std::chrono::steady_clock::now();
    AccessRecord& rec = rec_;
    rec.clear();
    auto incoming_id = req_.header("x-request-id");
    if (sane_request_id(incoming_id)) rec.request_id = incoming_id;
    else new_request_id(rec.request_id);
    set_header("x-request-id", rec.request_id);
    rec.method = req_.method_string;
    std::string_view target = req_.target;
    std::string_view path = target.substr(0, target.find('?'));
    rec.path = path;
    int status = 0;
    const bool get = req_.method == http::verb::get;
    const bool post = req_.method == http::verb::post;
    const bool api = is_api_path(path);
    // Who may call this path (API key, admin key, metrics key) was decided from the headers,
    // before the body was read: admit_before_body.
    Caller caller;
    if (api) {
      caller = pre_caller_;
      rec.tenant = caller.tenant_name();
    }
    // Each route is its own coroutine: only the one running is in memory while a stream is relayed.
    if (api && app_.draining.load()) status = co_await refuse_draining(path);
    else if (const ApiSurface surface = api_surface(path); surface != ApiSurface::none)
      status = post ? co_await through_pipeline(surface, caller, rec) : co_await method_not_allowed("POST");
    else status = co_await handle_other(path, target, get, post, caller, rec);
    finish(rec, status, t0, path);
  }

  core::Task<int> refuse_draining(std::string_view path) {
    keep_alive_ = false;
    core::Error e = core::make_error(core::ErrorKind::unavailable, "the gateway is shutting down; retry on another replica",
                                     core::ErrorSource::gateway, "gateway_draining");
    const int status = error_status(e, path);
    co_await respond(status, "application/json", error_body(e, path));
    co_return status;
  }

  // The paths that run the request pipeline, each through its API surface.
  enum class ApiSurface { none, chat, messages, responses, embeddings };
  static ApiSurface api_surface(std::string_view path) {
    if (path == "/v1/chat/completions" || path == "/chat/completions") return ApiSurface::chat;
    if (path == "/v1/messages") return ApiSurface::messages;
    if (path == "/v1/responses") return ApiSurface::responses;
    if (path == "/v1/embeddings" || path == "/embeddings") return ApiSurface::embeddings;
    return ApiSurface::none;
  }

  // Not a coroutine itself: the chosen route's coroutine is what runs.
  core::Task<int> through_pipeline(ApiSurface kind, const Caller& caller, AccessRecord& rec) {
    switch (kind) {
      case ApiSurface::messages:
        return run_pipeline<AnthropicMessagesSurface>(caller, rec, req_.header("anthropic-version"),
                                                      req_.header("anthropic-beta"));
      case ApiSurface::responses:
        return run_pipeline<OpenAiResponsesSurface>(
            caller, rec,
            ResponseStoreAccess{app_.responses.get(), app_.blocking.get(), caller.tenant_name(),
                                app_.config.server.max_body_bytes});
      case ApiSurface::embeddings: return run_pipeline<EmbeddingsSurface>(caller, rec);
      case ApiSurface::chat:
      case ApiSurface::none: break;
    }
    return run_pipeline<OpenAiChatSurface>(caller, rec);
  }

  // The pipeline through the API surface S (made from *this and `args`); the request body moves into it.
  template <class S, class... Args>
  core::Task<int> run_pipeline(const Caller& caller, AccessRecord& rec, Args... args) {
    S surface(*this, std::move(args)...);
    co_return co_await handle_request(app_.pipeline, *worker_.upstream, *this, surface, std::move(req_.body),
                                      routing_headers(), caller, rec);
  }

  // Every path that does not run the pipeline: token counting, models, health, metrics, admin, UI.
  core::Task<int> handle_other(std::string_view path, std::string_view target, bool get, bool post,
                               const Caller& caller, AccessRecord& rec) {
    int status = 0;
    if (path == "/v1/messages/count_tokens") {
      status = post ? co_await count_tokens(caller, rec) : co_await method_not_allowed("POST");
    } else if (path == "/v1/models" || path == "/models") {
      status = get ? co_await list_models(caller, target) : co_await method_not_allowed("GET");
    } else if (path == "/healthz") {
      co_await respond(200, "application/json", "{\"status\":\"ok\"}");
      status = 200;
    } else if (path == "/readyz") {
      bool draining = app_.draining.load();
      // A ledger that cannot write takes the replica out of the load balancer (when it refuses).
      bool ledger_down = app_.ledger && app_.config.state.refuse_on_ledger_failure && app_.ledger->failing();
      status = draining || ledger_down ? 503 : 200;
      co_await respond(status, "application/json",
                       draining      ? "{\"status\":\"draining\"}"
                       : ledger_down ? "{\"status\":\"spend_ledger_unavailable\"}"
                                     : "{\"status\":\"ready\"}");
    } else if (path == "/metrics") {
      for (const auto& [name, p] : app_.providers)
        if (p->dialect().name == "local") app_.metrics.provider_load(name, double(p->queue_depth()), p->decode_tokens_per_second());
      if (app_.ledger) app_.metrics.ledger(app_.ledger->failing(), double(app_.ledger->commit_failures()),
                                          double(app_.ledger->queue_depth()));
      if (app_.limits && app_.config.server.metrics_tenant_labels) {
        auto budgets = co_await core::offload(app_.blocking.get(), [this] { return app_.limits->budgets(std::chrono::system_clock::now()); });
        for (const auto& b : budgets) app_.metrics.budget(b.tenant, b.period, b.remaining.usd());
      }
      if (auto* r = dynamic_cast<RedisLimitStore*>(app_.limits.get()))
        app_.metrics.redis_fallbacks(double(r->fail_open_total()), double(r->fail_closed_total()));
      co_await respond(200, "text/plain; version=0.0.4; charset=utf-8", app_.metrics.serialize(router_families()));
      status = 200;
    } else if (path == "/admin/reload") {
      if (!post) status = co_await method_not_allowed("POST");
      else {
        auto r = reload_policy(app_, "POST /admin/reload");
        if (r.ok()) {
          status = 200;
          co_await respond(200, "application/json", "{\"status\":\"reloaded\"}");
        } else {
          core::Error e = r.error();
          status = app_.policy_router ? 422 : 409;
          co_await respond(status, "application/json", error_json(e));
        }
      }
    } else if (path == "/admin/state") {
      status = get ? co_await admin_state() : co_await method_not_allowed("GET");
    } else if (path == "/admin/spend") {
      status = co_await spend_report(target);
    } else if (path == "/admin/catalog" && !get) {
      status = co_await method_not_allowed("GET");
    } else if (path == "/admin/catalog") {
      // The catalog the router uses now: the live policy's deployments, else the built-in facts.
      auto policy = app_.policy_router ? app_.policy_router->policy() : nullptr;
      const auto& deployments = policy ? policy->deployments : routing::builtin_catalog()->deployments();
      const bool yaml = query_param(target, "format") == "yaml";
      status = 200;
      co_await respond(200, yaml ? "application/yaml" : "application/json",
                       routing::render_catalog(deployments, yaml ? routing::CatalogFormat::yaml : routing::CatalogFormat::json,
                                               catalog_surfaces(app_)));
    } else if (path == "/admin/suspend" || path.rfind("/admin/suspend/", 0) == 0) {
      status = co_await suspend_api(path, target);
    } else if (path == "/admin/explain") {
      if (!post) status = co_await method_not_allowed("POST");
      else status = co_await explain(std::move(req_.body), routing_headers());
    } else if (stored_response_path(path)) {
      // Named locals, not temporaries made in the call: the coroutine's arguments are copied into its frame.
      const auto q = target.find('?');
      std::string query(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
      std::string method(req_.method_string), tenant = caller.tenant_name(), spath(path);
      auto reply = co_await serve_stored_response(app_.responses.get(), app_.blocking.get(), std::move(tenant),
                                                  std::move(method), std::move(spath), std::move(query));
      status = reply.status;
      co_await respond(status, "application/json", std::move(reply.body));
    } else if (is_ui_path(path)) {
      status = get ? co_await ui_asset(path) : co_await method_not_allowed("GET");
    } else {
      core::Error e = core::make_error(core::ErrorKind::not_found, "Unknown path '" + std::string(path).substr(0, 200) + "'",
                                       core::ErrorSource::client, "unknown_url");
      status = 404;
      co_await respond(404, "application/json", error_body(e, path));
    }
    co_return status;
  }

  void finish(AccessRecord& rec, int status, std::chrono::steady_clock::time_point t0, std::string_view path) {
    rec.status = status;
    rec.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (path != "/metrics" && path != "/healthz" && path != "/readyz") app_.access_log.write(rec);
    if (status == 499) keep_alive_ = false;
  }

  static bool is_api_path(std::string_view path) {
    return path.rfind("/v1/", 0) == 0 || path == "/chat/completions" || path == "/models" || path == "/embeddings";
  }

  // The status page and its files: the same access rule as /admin/*.
  static bool is_ui_path(std::string_view path) { return path == "/ui" || path.rfind("/ui/", 0) == 0; }

  bool bearer_matches(const std::string& key) const {
    std::string_view auth = req_.header("authorization");
    std::string expected = "Bearer " + key;
    return auth.size() == expected.size() && CRYPTO_memcmp(auth.data(), expected.data(), auth.size()) == 0;
  }

  // Who may call this path, decided from the request line and headers alone: a refusal here is
  // sent before a byte of the body is read, so an unauthenticated client cannot make the gateway
  // buffer anything. Sets pre_caller_ for API paths.
  std::optional<core::Error> access_refusal(std::string_view path) {
    pre_caller_ = Caller{};
    if (is_api_path(path)) {
      auto c = authenticate(app_.config.tenants, req_.header("authorization"), req_.header("x-api-key"));
      if (!c) return std::move(c).error();
      pre_caller_ = std::move(c).value();
      return std::nullopt;
    }
    const auto& sc = app_.config.server;
    if (path.rfind("/admin/", 0) == 0 || is_ui_path(path)) {
      if (!sc.admin_key.empty()) {
        if (admin_credentials_match(req_.header("authorization"), sc.admin_key)) return std::nullopt;
        // On this challenge a browser asks for a user name and password, and it answers later
        // challenges of the same realm with them: the status page's fetches of /admin/* rely on it.
        set_header("www-authenticate", "Basic realm=\"gateway\", charset=\"UTF-8\"");
        return core::make_error(core::ErrorKind::auth,
                                "admin endpoints and the status page need the admin key (server.admin_key_env), as "
                                "'Authorization: Bearer <key>' or as the password of HTTP Basic credentials",
                                core::ErrorSource::client, "invalid_admin_key");
      }
      if (is_loopback_host(sc.listen_host)) return std::nullopt;
      return core::make_error(core::ErrorKind::forbidden,
                              "admin endpoints and the status page are disabled: without server.admin_key_env they "
                              "answer only on a loopback listener",
                              core::ErrorSource::client, "admin_disabled");
    }
    if (path == "/metrics" && !sc.metrics_key.empty() && !bearer_matches(sc.metrics_key))
      return core::make_error(core::ErrorKind::auth, "/metrics needs the metrics key (server.metrics_key_env)",
                              core::ErrorSource::client, "invalid_metrics_key");
    return std::nullopt;
  }

  // Between the header and the body: authentication and the process-wide body budget. Returns
  // false when the request was refused; the connection then closes (its body was never read).
  core::Task<bool> admit_before_body(const RequestParser& parser) {
    std::string_view target = req_.target;
    std::string_view path = target.substr(0, target.find('?'));
    if (auto refusal = access_refusal(path)) {
      co_await refuse_before_body(*refusal, path);
      co_return false;
    }
    const size_t max_body = app_.config.server.max_body_bytes;
    // A chunked body's size is unknown until it ends: it may use up to the per-body limit.
    size_t want = parser.chunked() ? max_body : size_t(parser.content_length().value_or(0));
    if (want > max_body) co_return true;  // the body read refuses it with 413 without buffering it
    if (want > 0 && !worker_.body_budget->reserve(want)) {
      co_await refuse_before_body(
          core::make_error(core::ErrorKind::overloaded,
                           "the gateway is receiving too many request bodies at once (server.max_buffered_body_bytes); "
                           "retry shortly",
                           core::ErrorSource::gateway, "too_many_buffered_bodies"),
          path);
      co_return false;
    }
    body_reserved_ = want;
    co_return true;
  }

  void release_body() {
    if (body_reserved_ == 0) return;
    worker_.body_budget->release(body_reserved_);
    body_reserved_ = 0;
  }

  core::Task<void> refuse_before_body(const core::Error& e, std::string_view path) {
    const auto t0 = std::chrono::steady_clock::now();
    keep_alive_ = false;
    AccessRecord& rec = rec_;
    rec.clear();
    auto incoming_id = req_.header("x-request-id");
    if (sane_request_id(incoming_id)) rec.request_id = incoming_id;
    else new_request_id(rec.request_id);
    set_header("x-request-id", rec.request_id);
    rec.method = req_.method_string;
    rec.path = path;
    rec.error = std::string(core::to_string(e.kind)) + ": " + e.message;
    const int status = error_status(e, path);
    co_await respond(status, "application/json", error_body(e, path));
    finish(rec, status, t0, path);
    co_await discard_unread_body();
  }

  // After a refusal sent before the body: read and drop what the client still sends, bounded in
  // bytes (at least the body limit, or `declared`) and time, then close. Closing with unread bytes
  // in the socket makes the kernel answer with a reset, which can destroy the refusal before the
  // client has read it.
  core::Task<void> discard_unread_body(uint64_t declared = 0) {
    if constexpr (std::is_same_v<Stream, TcpStream>) {
      boost::system::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    // Written by every lingering connection of the thread and never read.
    thread_local std::array<char, 16384> sink;
    size_t left = std::max<uint64_t>(app_.config.server.max_body_bytes + 64 * 1024, declared);
    arm(std::min<std::chrono::steady_clock::duration>(app_.config.server.body_timeout, std::chrono::seconds(2)));
    while (left > 0) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(sink.data(), std::min(left, sink.size())),
                                                      asio::as_tuple(core::use_task));
      if (ec) break;
      left -= std::min(left, n);
    }
    disarm();
  }

  static std::string query_param(std::string_view target, std::string_view name) {
    auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view kv = rest.substr(0, amp);
      auto eq = kv.find('=');
      if (kv.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
    return {};
  }

  // GET /admin/state: budgets and today's spend are read off the I/O thread (Redis, SQLite).
  core::Task<int> admin_state() {
    auto [budgets, spend_today] = co_await core::offload(app_.blocking.get(), [this] {
      auto now = std::chrono::system_clock::now();
      std::vector<BudgetStatus> b = app_.limits ? app_.limits->budgets(now) : std::vector<BudgetStatus>{};
      std::string spend;
      if (app_.ledger) {
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
        const int64_t day_ms = 86'400'000;
        auto r = app_.ledger->report_json("tenant", now_ms - now_ms % day_ms, now_ms + 1, /*savings=*/true);
        if (r) spend = std::move(r).value();
      }
      return std::pair{std::move(b), std::move(spend)};
    });
    co_await respond(200, "application/json", admin_state_json(app_, budgets, spend_today));
    co_return 200;
  }

  // GET /ui and /ui/<file>: the status page, compiled into the binary (gateway/admin/ui/).
  core::Task<int> ui_asset(std::string_view path) {
    set_header("cache-control", "no-store");
    set_header("x-content-type-options", "nosniff");
    set_header("content-security-policy", kUiContentSecurityPolicy);
    set_header("referrer-policy", "no-referrer");
    const UiAsset* asset = find_ui_asset(path);
    if (!asset) {
      core::Error e = core::make_error(core::ErrorKind::not_found,
                                       "Unknown status page file '" + std::string(path).substr(0, 200) + "'",
                                       core::ErrorSource::client, "unknown_url");
      co_await respond(404, "application/json", error_json(e));
      co_return 404;
    }
    co_await respond(200, asset->content_type, std::string(asset->body));
    co_return 200;
  }

  core::Task<int> spend_report(std::string_view target) {
    if (!app_.ledger) {
      core::Error e = core::make_error(core::ErrorKind::bad_request,
                                       "no spend ledger configured (state.ledger_path or state.ledger)",
                                       core::ErrorSource::client, "no_ledger");
      co_await respond(409, "application/json", error_json(e));
      co_return 409;
    }
    std::string by = query_param(target, "by");
    if (by.empty()) by = "tenant";
    auto to_ms = [](const std::string& v, int64_t dflt) -> int64_t {
      if (v.empty()) return dflt;
      char* end = nullptr;
      long long x = std::strtoll(v.c_str(), &end, 10);
      return end && *end == 0 ? x : dflt;
    };
    int64_t from = to_ms(query_param(target, "from_ms"), 0);
    int64_t to = to_ms(query_param(target, "to_ms"), int64_t(1) << 62);
    // Off the I/O thread: a PostgreSQL ledger answers over the network.
    const std::string savings_param = query_param(target, "savings");
    const bool savings = savings_param == "1" || savings_param == "true";
    auto r = co_await core::offload(app_.blocking.get(),
                              [this, &by, from, to, savings] { return app_.ledger->report_json(by, from, to, savings); });
    if (!r) {
      // A bad group_by is the client's; a ledger that cannot be read is ours (and temporary).
      const int code = r.error().kind == core::ErrorKind::bad_request ? 400 : 503;
      co_await respond(code, "application/json", error_json(r.error()));
      co_return code;
    }
    co_await respond(200, "application/json", std::move(r).value());
    co_return 200;
  }

  // Views of req_'s fields for routing, in a vector reused from request to request.
  // GET /v1/models: the names this caller's requests could be served under (gateway/api/model_list.h),
  // judged off the I/O thread (one routing decision per name and API path).
  core::Task<int> list_models(const Caller& caller, std::string_view target) {
    routing::RequestFeatures base = features_of(core::ChatRequest{}, routing_headers(),
                                                app_.config.trust_routing_headers);
    if (caller.tenant) {
      base.tenant = caller.tenant_name();
      base.tenant_settings = &caller.tenant->routing;
    }
    const std::string all = query_param(target, "all");
    const bool list_all = all == "true" || all == "1";
    auto created = std::chrono::duration_cast<std::chrono::seconds>(app_.started.time_since_epoch()).count();
    auto router = app_.router.load();
    const Tenant* tenant = caller.tenant;
    std::string body = co_await core::offload(app_.blocking.get(), [&] {
      return model_list_json(*router, base, [tenant](std::string_view n) { return !tenant || model_allowed(*tenant, n); },
                             list_all, created);
    });
    co_await respond(200, "application/json", body);
    co_return 200;
  }

  const RequestHeaders& routing_headers() {
    views_.clear();
    for (size_t i = 0; i < req_.field_count; ++i) {
      const auto& [name, value] = req_.fields[i];
      if (name == "authorization" || name == "cookie") continue;  // never reaches routing or logs
      views_.emplace_back(name, value);
    }
    return views_;
  }

  // The family `name` of `out`, added with its help text and type on first use.
  static prometheus::MetricFamily& family(std::vector<prometheus::MetricFamily>& out, std::map<std::string, size_t>& index,
                                          const std::string& name, const char* help, bool counter) {
    auto [it, inserted] = index.emplace(name, out.size());
    if (inserted) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
      out.push_back(std::move(f));
    }
    return out[it->second];
  }

  static void add_sample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels, double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    if (f.type == prometheus::MetricType::Counter) m.counter.value = value;
    else m.gauge.value = value;
    f.metric.push_back(std::move(m));
  }

  // The router's live figures, as gauges labelled by deployment (what routing sees is what dashboards
  // see), then the traffic shares its caps see and its canary counts (routing/diversify.h).
  std::vector<prometheus::MetricFamily> router_families() const {
    std::vector<prometheus::MetricFamily> out;
    if (!app_.policy_router) return out;
    std::map<std::string, size_t> index;
    for (const auto& sample : app_.policy_router->stats_samples()) {
      const bool counter = sample.metric.size() > 6 && sample.metric.compare(sample.metric.size() - 6, 6, "_total") == 0;
      add_sample(family(out, index, sample.metric,
                        "Live routing figure per deployment, as the router uses it (policies/README.md).", counter),
                 {{"deployment", sample.deployment}}, sample.value);
    }
    for (const auto& sample : app_.policy_router->diversity_samples()) {
      const char* help = sample.counter ? "Requests sent first to a fall-back as a canary, per route and deployment."
                                        : "Share of the route's traffic in its max_share window, per capped key.";
      std::vector<prometheus::ClientMetric::Label> labels;
      for (const auto& [name, value] : sample.labels) labels.push_back({name, value});
      add_sample(family(out, index, sample.metric, help, sample.counter), std::move(labels), sample.value);
    }
    append_suspension_families(*app_.policy_router, app_.suspensions.get(), out);
    append_share_sync_families(app_.share_sync.get(), out);
    return out;
  }

  core::Task<int> explain(std::string body, const RequestHeaders& headers) {
    if (!app_.policy_router) {
      core::Error e = core::make_error(core::ErrorKind::bad_request, "explain needs a policy file (`policy:` in the config)",
                                       core::ErrorSource::client, "no_policy");
      co_await respond(409, "application/json", error_json(e));
      co_return 409;
    }
    auto specs = what_if_member(body);
    if (!specs) {
      co_await respond(400, "application/json", error_json(specs.error()));
      co_return 400;
    }
    auto parsed = parse_chat_request(std::move(body));
    if (!parsed) {
      co_await respond(400, "application/json", error_json(parsed.error()));
      co_return 400;
    }
    auto features = features_of(*parsed, headers, app_.config.trust_routing_headers);
    if (const Tenant* t = app_.config.tenants.find(features.tenant)) features.tenant_settings = &t->routing;
    if (specs->empty()) {
      std::string explained = explain_with_surfaces(app_, app_.policy_router->explain_json(features));
      co_await respond(200, "application/json", std::move(explained));
      co_return 200;
    }
    auto what_if = what_if_from_specs(app_, *specs);
    if (!what_if) {
      co_await respond(400, "application/json", error_json(what_if.error()));
      co_return 400;
    }
    std::vector<routing::RequestFeatures> one(1, features);
    co_await respond(200, "application/json", routing::what_if_json(*app_.policy_router, one, *what_if));
    co_return 200;
  }

  // /admin/suspend: the kill switch (admin/suspension_api.h). Suspending and lifting write the
  // audit table (and Redis in a fleet): off the I/O thread when there is a blocking pool.
  core::Task<int> suspend_api(std::string_view path, std::string_view target) {
    static const std::string kCaller = "admin";  // one admin key: every admin caller is "admin"
    const bool collection = path == "/admin/suspend";
    const std::string id = collection ? std::string() : percent_decoded(path.substr(std::string_view("/admin/suspend/").size()));
    AdminReply r;
    if (collection && req_.method == http::verb::get) {
      r = list_suspensions(app_);
    } else if (collection && req_.method == http::verb::post) {
      r = co_await core::offload(app_.blocking.get(), [&] { return create_suspension(app_, req_.body, kCaller); });
    } else if (req_.method == http::verb::delete_) {
      const std::string selector = percent_decoded(query_param(target, "selector"));
      if (collection && selector.empty()) co_return co_await method_not_allowed("GET, POST");
      r = co_await core::offload(app_.blocking.get(), [&] {
        return collection ? lift_suspensions_matching(app_, selector, kCaller) : lift_suspension(app_, id, kCaller);
      });
    } else {
      co_return co_await method_not_allowed(collection ? "GET, POST, DELETE" : "DELETE");
    }
    co_await respond(r.status, "application/json", r.body);
    co_return r.status;
  }

  static std::string percent_decoded(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1; };
      if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
        out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }

  core::Task<int> method_not_allowed(const char* allowed) {
    set_header("allow", allowed);
    core::Error e = core::make_error(core::ErrorKind::bad_request, std::string("Use ") + allowed + " for this path",
                                     core::ErrorSource::client, "method_not_allowed");
    co_await respond(405, "application/json", error_body(e, request_path()));
    co_return 405;
  }

  // POST /v1/messages/count_tokens: the gateway's estimate of the request's input tokens (the
  // same figure routing and budgets use), for a model the caller may use.
  core::Task<int> count_tokens(const Caller& caller, AccessRecord& rec) {
    auto parsed = anthropic_count_tokens_request(req_.body);
    if (!parsed) {
      rec.error = parsed.error().message;
      co_await respond(400, "application/json", anthropic_error_json(parsed.error()));
      co_return 400;
    }
    rec.model = parsed->model;
    if (caller.tenant && !model_allowed(*caller.tenant, parsed->model)) {
      core::Error e = core::make_error(core::ErrorKind::forbidden,
                                       "Tenant '" + caller.tenant_name() + "' may not use model '" + parsed->model + "'",
                                       core::ErrorSource::client, "model_not_allowed", "model");
      rec.error = e.message;
      co_await respond(403, "application/json", anthropic_error_json(e));
      co_return 403;
    }
    if (auto e = unknown_model(parsed->chat)) {
      rec.error = e->message;
      co_await respond(404, "application/json", anthropic_error_json(*e));
      co_return 404;
    }
    co_await respond(200, "application/json", count_tokens_json(*parsed));
    co_return 200;
  }

  // A model no route serves: count_tokens answers it as /v1/messages would (404), without a plan
  // (planning takes a half-open deployment's probe; a count must not). Any other refusal
  // (cooling down, constraints) does not stop a count: nothing is sent upstream.
  std::optional<core::Error> unknown_model(const core::ChatRequest& req) {
    if (app_.policy_router) {
      auto d = app_.policy_router->decide(features_of(req, routing_headers(), app_.config.trust_routing_headers));
      if (d.error && d.error->kind == core::ErrorKind::not_found) return d.error;
      return std::nullopt;
    }
    const auto names = app_.router.load()->model_names();  // the models: aliases, exactly
    if (std::find(names.begin(), names.end(), req.model) != names.end()) return std::nullopt;
    return core::make_error(core::ErrorKind::not_found, "The model '" + req.model + "' does not exist on this gateway",
                            core::ErrorSource::client, "model_not_found", "model");
  }

  App& app_;
  Worker& worker_;
  Stream stream_;
  std::atomic<size_t>& open_;
  std::list<SessionBase*>::iterator it_;
  std::vector<std::pair<std::string, std::string>> headers_;  // the first nheaders_ are this response's
  size_t nheaders_ = 0;
  std::shared_ptr<WatchState> watch_;     // the started watch, if any
  providers::CancelHook* watch_hook_ = nullptr;  // set while a request wants watching
  Probe probe_ = Probe::none;             // see Probe
  bool watch_due_ = false;                // the disconnect watch starts at the next sweep
  bool writing_ = false;                  // a response write is in progress
  bool streaming_ = false;                // the committed response is a chunked SSE stream
  uint32_t slot_ = 0;  // this session's deadline and probe flag in worker_.sweep_table
  bool timed_out_ = false;
  char peek_byte_ = 0;  // target of the disconnect watch's peek
  bool keep_alive_ = true;
  bool committed_ = false;
  bool broken_ = false;
  bool idle_ = false;
  bool awaiting_first_ = false;  // waiting for the connection's first request
  bool http10_ = false;
  int status_ = 0;
  std::string out_;  // reused for every message head and chunk frame of this connection
  IncomingRequest req_;  // the request being handled; its strings are reused by the next one
  Caller pre_caller_;     // who sent req_, authenticated from its headers before its body was read
  size_t body_reserved_ = 0;  // this request's share of the process-wide body budget
  RequestHeaders views_;  // routing_headers() of req_
  AccessRecord rec_;      // the access-log record of the request being handled, reused
};

}  // namespace

struct Server::Impl {
  App& app;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<asio::ssl::context> tls;
  std::atomic<size_t> open{0};
  BodyBudget body_budget;

  explicit Impl(App& a) : app(a) { body_budget.limit = a.config.server.max_buffered_body_bytes; }

  core::Task<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, sock] = co_await w.acceptor->async_accept(asio::as_tuple(core::use_task));
      if (ec) {
        if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        core::SteadyTimer t(w.ioc, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::as_tuple(core::use_task));
        continue;
      }
      if (open.fetch_add(1) >= app.config.server.max_connections) {
        open.fetch_sub(1);
        app.metrics.rejected_connections().Increment();
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n"
            "Content-Length: 113\r\n\r\n{\"error\":{\"message\":\"too many connections\",\"type\":\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}";
        boost::system::error_code wec;
        sock.non_blocking(true, wec);
        sock.send(asio::buffer(kBusy, sizeof kBusy - 1), 0, wec);
        sock.close(wec);
        continue;
      }
      boost::system::error_code oec;
      sock.set_option(tcp::no_delay(true), oec);
      if (tls) {
        using S = providers::TlsStream;
        S stream(TcpStream(std::move(sock)), tls->native_handle(), S::Role::server);
        if (!stream.valid()) continue;  // SSL_new failed (out of memory): the connection is dropped
        auto s = std::make_unique<Session<S>>(app, w, std::move(stream), open);
        asio::co_spawn(w.ioc, Session<S>::run(std::move(s)), asio::detached);
      } else {
        using S = TcpStream;
        auto s = std::make_unique<Session<S>>(app, w, S(std::move(sock)), open);
        asio::co_spawn(w.ioc, Session<S>::run(std::move(s)), asio::detached);
      }
    }
  }
};

namespace {

// SO_REUSEPORT lets each worker bind its own listening socket to the port (the kernel spreads
// connections over them), but it would also let a second gateway, or any process of the same user
// setting it, join the port silently and take a share of the traffic. So a probe socket without
// SO_REUSEPORT binds the address first: that fails if any socket is bound there. The probe is
// closed right before the workers bind; a process that binds in that gap of microseconds is the
// one case not detected.
boost::system::error_code check_port_free(const asio::ip::address& addr, unsigned short port) {
  asio::io_context ioc(1);
  tcp::acceptor probe(ioc);
  tcp::endpoint ep(addr, port);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);  // TIME_WAIT is no owner
  if (!ec) probe.bind(ep, ec);
  boost::system::error_code ignore;
  probe.close(ignore);
  return ec;
}

}  // namespace

Server::Server(App& app) : impl_(std::make_unique<Impl>(app)) {}
Server::~Server() = default;

int Server::run() {
  App& app = impl_->app;
  const auto& sc = app.config.server;
  if (!sc.tls_cert_file.empty()) {
    impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    // Idle keep-alive and streaming connections give back OpenSSL's record buffers (~34 KiB each).
    SSL_CTX_set_mode(impl_->tls->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    impl_->tls->use_certificate_chain_file(sc.tls_cert_file, ec);
    if (!ec) impl_->tls->use_private_key_file(sc.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      std::fprintf(stderr, "gateway: cannot load TLS certificate/key (%s, %s): %s\n", sc.tls_cert_file.c_str(),
                   sc.tls_key_file.c_str(), ec.message().c_str());
      return 2;
    }
  }
  // Installed before the listening line is printed, so a SIGTERM right after start-up still drains.
  asio::io_context main_ioc(1);
  asio::signal_set signals(main_ioc, SIGINT, SIGTERM, SIGHUP);
  int n = sc.workers > 0 ? sc.workers : std::max(1u, std::thread::hardware_concurrency());
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(sc.listen_host, ec);
  if (ec) {
    std::fprintf(stderr, "gateway: server.listen host '%s' is not an IP address\n", sc.listen_host.c_str());
    return 2;
  }
  unsigned short port = static_cast<unsigned short>(std::stoi(sc.listen_port));
  // Port 0: the kernel gives the first worker a port nobody holds, and the others join it.
  if (auto pec = port != 0 ? check_port_free(addr, port) : boost::system::error_code{}) {
    std::fprintf(stderr, "gateway: cannot listen on %s:%s: %s%s\n", sc.listen_host.c_str(), sc.listen_port.c_str(),
                 pec.message().c_str(),
                 pec == asio::error::address_in_use ? " (another process is bound to this address and port)" : "");
    return 2;
  }
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->body_budget = &impl_->body_budget;
    w->acceptor = std::make_unique<Acceptor>(w->ioc);
    tcp::endpoint ep(addr, port);
    w->acceptor->open(ep.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    int one = 1;
    if (!ec && ::setsockopt(w->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec = boost::system::error_code(errno, boost::system::system_category());
    if (!ec) w->acceptor->bind(ep, ec);
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "gateway: cannot listen on %s:%u: %s\n", sc.listen_host.c_str(), port, ec.message().c_str());
      return 2;
    }
    port = w->acceptor->local_endpoint().port();  // port 0: the others join the chosen port
    w->upstream = std::make_unique<providers::UpstreamClient>(w->ioc.get_executor(), app.upstream_tls,
                                                              app.config.pool_max_idle, app.config.pool_max_open);
    impl_->workers.push_back(std::move(w));
  }
  std::string host = addr.is_v6() ? "[" + sc.listen_host + "]" : sc.listen_host;
  std::printf("gateway: listening on %s://%s:%u\n", impl_->tls ? "https" : "http", host.c_str(), port);
  std::fflush(stdout);

  if (!app.config.prometheus.url.empty() && app.policy_router) {
    FleetFeed feed{app.config.prometheus.url, app.config.prometheus.interval, &app.draining, &app.metrics, app.policy_router};
    asio::co_spawn(impl_->workers[0]->ioc, run_prometheus_feed(std::move(feed), *impl_->workers[0]->upstream), asio::detached);
  }
  for (auto& w : impl_->workers) {
    asio::co_spawn(w->ioc, impl_->accept_loop(*w), asio::detached);
    sweep_deadlines(*w);
    w->thread = std::thread([&ioc = w->ioc] {
      auto guard = asio::make_work_guard(ioc);
      ioc.run();
    });
  }

  // Signals on the main thread: SIGTERM/SIGINT drain; a second signal forces exit.
  int exit_code = 0;
  std::function<void(boost::system::error_code, int)> on_signal;
  core::SteadyTimer drain_timer(main_ioc);
  std::chrono::steady_clock::time_point drain_deadline{};
  bool drain_aborted = false;
  // Lives as long as main_ioc runs: the timer re-arms it by reference.
  std::function<void(boost::system::error_code)> poll = [&](boost::system::error_code tec) {
    if (tec) return;
    // Keep-alive sessions that became idle after the first sweep are closed too.
    for (auto& w : impl_->workers)
      asio::post(w->ioc, [wp = w.get()] { for (auto* s : wp->sessions) s->close_if_idle(); });
    if (impl_->open.load() == 0) { main_ioc.stop(); return; }
    const auto now = std::chrono::steady_clock::now();
    if (now >= drain_deadline && !drain_aborted) {
      // Requests still running end now, a stream with its in-band error event rather than a bare
      // end of file; they get a moment to write it.
      std::fprintf(stderr, "gateway: drain deadline passed with %zu connection(s) open; ending their requests\n",
                   impl_->open.load());
      drain_aborted = true;
      for (auto& w : impl_->workers)
        asio::post(w->ioc, [wp = w.get()] { for (auto* s : wp->sessions) s->abort_for_drain(); });
    }
    if (now >= drain_deadline + kDrainGrace) {
      std::fprintf(stderr, "gateway: %zu connection(s) still open after the drain deadline; closing them\n",
                   impl_->open.load());
      main_ioc.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(50));
    drain_timer.async_wait(poll);
  };
  on_signal = [&](boost::system::error_code sec, int signo) {
    if (sec) return;
    if (signo == SIGHUP) {
      if (app.policy_router) (void)reload_policy(app, "SIGHUP");  // logs and counts the outcome itself
      else std::fprintf(stderr, "gateway: SIGHUP ignored: no policy file configured\n");
      signals.async_wait(on_signal);
      return;
    }
    if (app.draining.exchange(true)) {
      std::fprintf(stderr, "gateway: second signal, stopping now\n");
      exit_code = 1;
      main_ioc.stop();
      return;
    }
    std::fprintf(stderr, "gateway: signal %d, draining (up to %lld ms)\n", signo,
                 static_cast<long long>(sc.drain_timeout.count()));
    for (auto& w : impl_->workers) {
      // The listener stays open: load balancers keep getting answers (503 on /readyz) until exit.
      asio::post(w->ioc, [wp = w.get()] { for (auto* s : wp->sessions) s->close_if_idle(); });
    }
    signals.async_wait(on_signal);
    drain_deadline = std::chrono::steady_clock::now() + sc.drain_timeout;
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait(poll);
  };
  signals.async_wait(on_signal);

  // Hot reload when the policy file changes (polled: works on every filesystem and with editors
  // that replace the file). An invalid edit is refused and counted; the old policy keeps serving.
  core::SteadyTimer watch_timer(main_ioc);
  struct FileStamp {
    bool ok = false;
    struct timespec mtime {};
    off_t size = 0;
    ino_t ino = 0;
    bool operator==(const FileStamp& o) const {
      return ok == o.ok && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && size == o.size && ino == o.ino;
    }
  };
  auto stamp_of = [&]() {
    FileStamp st;
    struct stat sb {};
    if (::stat(app.config.policy_file.c_str(), &sb) == 0) {
      st.ok = true;
      st.mtime = sb.st_mtim;
      st.size = sb.st_size;
      st.ino = sb.st_ino;
    }
    return st;
  };
  FileStamp last_stamp = app.policy_router ? stamp_of() : FileStamp{};
  std::function<void(boost::system::error_code)> watch = [&](boost::system::error_code wec) {
    if (wec || app.draining.load()) return;
    FileStamp now = stamp_of();
    if (!(now == last_stamp)) {
      last_stamp = now;
      if (now.ok) (void)reload_policy(app, "file changed");  // logs and counts the outcome itself
    }
    watch_timer.expires_after(app.config.policy_poll);
    watch_timer.async_wait(watch);
  };
  if (app.policy_router && app.config.policy_poll.count() > 0) {
    watch_timer.expires_after(app.config.policy_poll);
    watch_timer.async_wait(watch);
  }
  main_ioc.run();

  for (auto& w : impl_->workers) w->ioc.stop();
  for (auto& w : impl_->workers)
    if (w->thread.joinable()) w->thread.join();
  // Sessions still suspended in their coroutines are destroyed with the io_contexts.
  impl_->workers.clear();
  std::fprintf(stderr, "gateway: stopped\n");
  return exit_code;
}

}  // namespace gateway
