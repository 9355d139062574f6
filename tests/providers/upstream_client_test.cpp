// The upstream client's body reads against a server on 127.0.0.1 that writes its answer in pieces,
// each only once the test lets it go: the client has then read everything before and waits for
// the next bytes, which is when it must hold no read buffer (memory per open stream). Bytes left
// in the buffer (the CRLF after a chunk), ends of bodies delimited by the connection's close,
// a cut inside a chunk and a deadline while waiting are each read right. Every case is bounded:
// the io_context runs for at most 20 s.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/task.h"
#include "providers/upstream_client.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using core::ErrorKind;

// Writes pieces[0] as soon as the request is read, pieces[i] once release() was called i times,
// then closes the connection after one more release (or never, with hold_open).
class StepServer {
 public:
  explicit StepServer(asio::io_context& ioc)
      : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), gate_(ioc.get_executor()) {}
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  void release() {
    ++released_;
    gate_.cancel();
  }

  core::Task<void> serve(std::vector<std::string> pieces, bool hold_open) {
    try {
      auto sock = co_await acceptor_.async_accept(core::use_task);
      sock.set_option(tcp::no_delay(true));  // each piece leaves at once
      std::string buf;
      char tmp[4096];
      while (buf.find("\r\n\r\n") == std::string::npos)  // the client's request has no body here
        buf.append(tmp, co_await sock.async_read_some(asio::buffer(tmp), core::use_task));
      for (size_t i = 0; i <= pieces.size(); ++i) {
        while (released_ < static_cast<int>(i)) {
          gate_.expires_at(core::SteadyTime::max());
          co_await gate_.async_wait(asio::as_tuple(core::use_task));
        }
        if (i == pieces.size()) break;
        co_await asio::async_write(sock, asio::buffer(pieces[i]), core::use_task);
      }
      if (hold_open) {
        gate_.expires_after(std::chrono::seconds(30));
        co_await gate_.async_wait(asio::as_tuple(core::use_task));
      }
    } catch (const std::exception&) {
      // the client closed first: fine for the cases that provoke it
    }
  }

 private:
  tcp::acceptor acceptor_;
  core::SteadyTimer gate_;
  int released_ = 0;
};

struct Outcome {
  std::string body;                      // the pieces read, joined
  std::vector<size_t> buffers_waiting;   // read buffers held while the client waited, at each release
  std::optional<ErrorKind> error;
  bool complete = false;                 // the body ended (an empty piece)
};

// Reads the whole answer. A read that waits for the server's next piece lets it go: a handler
// posted before the read finds it suspended with no read buffer held (it tries again while a
// buffer is held, as when the read is completing, and records what it saw after 1000 tries).
// With several_per_read, one read may need more than one piece (none of them completes a body
// piece): after each release the next is tried again within the same read.
Outcome read_in_steps(std::vector<std::string> pieces, bool hold_open = false,
                      std::chrono::milliseconds read_deadline = std::chrono::milliseconds(15000),
                      bool several_per_read = false) {
  Outcome out;
  asio::io_context ioc;
  StepServer server(ioc);
  auto ep = providers::parse_endpoint(server.origin());
  EXPECT_TRUE(ep);
  auto tls = providers::make_tls_context({});
  EXPECT_TRUE(tls);
  providers::UpstreamClient client(ioc.get_executor(), *tls, 4, 16);
  const size_t steps = pieces.size();  // releases: the pieces after the first, then the close
  size_t released = 0;
  int reads = 0;
  bool reading = false;
  std::function<void(int, int)> release_again;
  std::function<void(int, int)> try_release = [&](int read, int tries) {
    if (!reading || read != reads) return;  // that read did not need the next piece
    if (client.read_buffers_in_use() != 0 && tries < 1000) {
      asio::post(ioc, [&try_release, read, tries] { try_release(read, tries + 1); });
      return;
    }
    out.buffers_waiting.push_back(client.read_buffers_in_use());
    ++released;
    server.release();
    if (several_per_read && released < steps) asio::post(ioc, [&release_again, read] { release_again(read, 0); });
  };
  // Within one read: the next piece once the client holds a buffer again (it woke and kept part
  // of the last piece, waiting for more), or after 1000 turns (it woke and waits without one).
  release_again = [&](int read, int tries) {
    if (!reading || read != reads) return;
    if (client.read_buffers_in_use() == 0 && tries < 1000) {
      asio::post(ioc, [&release_again, read, tries] { release_again(read, tries + 1); });
      return;
    }
    out.buffers_waiting.push_back(client.read_buffers_in_use());
    ++released;
    server.release();
    if (released < steps) asio::post(ioc, [&release_again, read] { release_again(read, 0); });
  };
  asio::co_spawn(ioc, server.serve(std::move(pieces), hold_open), asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> core::Task<void> {
        providers::UpstreamRequest req;
        req.target = "/v1/chat/completions";
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        auto ex = co_await client.start(*ep, req, providers::UpstreamTimeouts{}, deadline);
        if (!ex) {
          out.error = ex.error().kind;
          ioc.stop();
          co_return;
        }
        EXPECT_EQ((*ex)->status(), 200);
        for (;;) {
          const int read = ++reads;
          reading = true;
          if (released < steps) asio::post(ioc, [&try_release, read] { try_release(read, 0); });
          auto piece = co_await (*ex)->read_some(std::chrono::steady_clock::now() + read_deadline);
          reading = false;
          if (!piece) {
            out.error = piece.error().kind;
            break;
          }
          if (piece->empty()) {
            out.complete = true;
            break;
          }
          out.body.append(*piece);
        }
        ex->reset();
        EXPECT_EQ(client.read_buffers_in_use(), 0u) << "the exchange is over: its connection is pooled or closed";
        ioc.stop();
      },
      asio::detached);
  ioc.run_for(std::chrono::seconds(20));
  EXPECT_TRUE(out.error || out.complete) << "the answer was not read within 20 s";
  return out;
}

constexpr const char* kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

TEST(UpstreamBodyReads, ChunkedPiecesAcrossWaitsWithACarriedCrlf) {
  // After "ld" the chunk's CRLF stays buffered (the parser takes it with the next size line): the
  // client waits with it carried aside, its buffer given back.
  auto r = read_in_steps({kChunkedHead, "5\r\nhello", "\r\n6\r\n wor", "ld\r\n", "0\r\n\r\n"});
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "hello world");
  // Four waits (before each piece after the header's), none holding a buffer.
  EXPECT_EQ(r.buffers_waiting, (std::vector<size_t>{0, 0, 0, 0}));
}

TEST(UpstreamBodyReads, BodyDelimitedByTheCloseEndsAtTheClose) {
  auto r = read_in_steps({"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc", "def"});
  ASSERT_FALSE(r.error) << r.body << " " << r.buffers_waiting.size();
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "abcdef");
  EXPECT_EQ(r.buffers_waiting, (std::vector<size_t>{0, 0}));
}

TEST(UpstreamBodyReads, ContentLengthBodyAcrossWaits) {
  auto r = read_in_steps({"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "def", "ghi"});
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "abcdefghi");
}

TEST(UpstreamBodyReads, ACloseInsideAChunkIsAnError) {
  auto r = read_in_steps({kChunkedHead, "a\r\nhel"});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, ErrorKind::server_error);
  EXPECT_EQ(r.body, "hel");
}

TEST(UpstreamBodyReads, APartialSizeLineLongerThanTheCarryWaitsInTheBuffer) {
  // The chunk's size line (with an extension) arrives in two pieces; its first 30 bytes stay
  // buffered, more than the carry holds: the client waits with its buffer, and loses none of it.
  auto r = read_in_steps({kChunkedHead, "5;name=a-rather-long-extension", "-value\r\nhello\r\n", "0\r\n\r\n"},
                         false, std::chrono::milliseconds(15000), true);
  ASSERT_FALSE(r.error) << r.body;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "hello");
  ASSERT_EQ(r.buffers_waiting.size(), 4u);  // before each piece after the header's, and before the close
  EXPECT_EQ(r.buffers_waiting[1], 1u) << "the wait for the rest of the size line holds its bytes";
}

TEST(UpstreamBodyReads, ABodyLargerThanTheBufferIsReadWhole) {
  // One write of 300 KB: the reads fill the buffer again and again before the socket is drained.
  std::string big;
  for (int i = 0; big.size() < 300000; ++i) big += std::to_string(i) + ",";
  auto r = read_in_steps({"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big});
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, big);
}

TEST(UpstreamBodyReads, TheReadDeadlineEndsAWaitWithoutBytes) {
  // The server sends the header and the first chunk, then nothing: the read's deadline ends it.
  auto r = read_in_steps({std::string(kChunkedHead) + "2\r\nhi\r\n"}, true, std::chrono::milliseconds(200));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, ErrorKind::timeout);
  EXPECT_EQ(r.body, "hi");
}

}  // namespace
