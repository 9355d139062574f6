// The native Anthropic relay end to end at the provider: the OpenAI-compatible provider against a
// one-connection HTTP server on 127.0.0.1 that answers with canned bytes (the route in front of it
// is the gateway's). Waits are bounded: each case runs the io_context for at most 20 s.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/task.h"
#include "providers/openai_compatible.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using core::ErrorKind;

// What the server answers: pieces written in order, then the socket closed (or left open).
struct Canned {
  std::vector<std::string> pieces;
  bool hold_open = false;  // a stalled upstream: nothing more, ever, until the test ends
};

struct Seen {
  std::string head;  // request line and headers
  std::string body;
  std::string header(std::string_view name) const {
    std::string lower_head;
    for (char c : head) lower_head.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    std::string key = "\r\n";
    for (char c : name) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    key += ": ";
    auto at = lower_head.find(key);
    if (at == std::string::npos) return "<absent>";
    auto from = at + key.size();
    return head.substr(from, head.find("\r\n", from) - from);
  }
};

core::Task<void> serve_once(tcp::acceptor& acceptor, const Canned& canned, Seen& seen) {
  try {
    auto sock = co_await acceptor.async_accept(core::use_task);
    std::string buf;
    char tmp[4096];
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos)
      buf.append(tmp, co_await sock.async_read_some(asio::buffer(tmp), core::use_task));
    seen.head = buf.substr(0, head_end);
    const size_t length = std::strtoul(seen.header("content-length").c_str(), nullptr, 10);
    while (buf.size() < head_end + 4 + length)
      buf.append(tmp, co_await sock.async_read_some(asio::buffer(tmp), core::use_task));
    seen.body = buf.substr(head_end + 4, length);
    for (const auto& piece : canned.pieces) co_await asio::async_write(sock, asio::buffer(piece), core::use_task);
    if (canned.hold_open) {
      core::SteadyTimer forever(co_await asio::this_coro::executor);
      forever.expires_after(std::chrono::seconds(30));
      co_await forever.async_wait(core::use_task);
    }
  } catch (const std::exception&) {
    // the provider closed first: fine for the cases that provoke it
  }
}

// Records what the client would have received; `fail_after` events, the client is gone.
class RecordingSink final : public providers::EventSink {
 public:
  std::vector<std::pair<std::string, std::string>> events;
  size_t fail_after = SIZE_MAX;
  providers::CancelHook* cancel_on_first = nullptr;  // the gateway cancels (client gone, drain) mid-stream
  core::Task<bool> send_event(std::string_view event, std::string_view data) override {
    if (events.size() >= fail_after) co_return false;
    events.emplace_back(event, data);
    if (cancel_on_first) std::exchange(cancel_on_first, nullptr)->cancel();
    co_return true;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& [name, data] : events) n.push_back(name);
    return n;
  }
};

std::string sse_response(const std::vector<std::pair<std::string, std::string>>& events) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
  for (const auto& [name, data] : events) out += "event: " + name + "\ndata: " + data + "\n\n";
  return out;
}

std::string json_response(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra + "\r\n" + body;
}

const std::pair<std::string, std::string> kStart{
    "message_start",
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"glm-5.2","content":[],)"
    R"("stop_reason":null,"usage":{"input_tokens":6,"cache_read_input_tokens":64,"output_tokens":0}}})"};
const std::pair<std::string, std::string> kPing{"ping", R"({"type":"ping"})"};
const std::pair<std::string, std::string> kBlock{
    "content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"};
const std::pair<std::string, std::string> kHello{
    "content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from glm"}})"};
const std::pair<std::string, std::string> kBlockStop{"content_block_stop", R"({"type":"content_block_stop","index":0})"};
const std::pair<std::string, std::string> kDelta{
    "message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":22}})"};
const std::pair<std::string, std::string> kStop{"message_stop", R"({"type":"message_stop"})"};
const std::pair<std::string, std::string> kOverloaded{
    "error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"};

constexpr const char* kKey = "glm-test-key-0123456789";

struct Run {
  providers::AttemptResult res;
  bool hook_left = false;  // the cancel hook still pointed at the attempt's (dead) exchange
  Seen seen;
  RecordingSink sink;
};

// One attempt of `provider_name` against a server answering `canned`; sink == false: non-stream.
Run run(const char* provider_name, Canned canned, bool stream, size_t fail_after = SIZE_MAX,
        std::string_view beta = "", std::string_view version = "", const char* auth = "",
        const char* key_env = "GW_TEST_ANTHROPIC_KEY", bool cancel_mid_stream = false) {
  Run out;
  out.sink.fail_after = fail_after;
  providers::CancelHook cancel;
  if (cancel_mid_stream) out.sink.cancel_on_first = &cancel;
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string origin = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  ::setenv("GW_TEST_ANTHROPIC_KEY", kKey, 1);
  providers::ProviderConfig cfg{.name = provider_name,
                                .base_url = origin + "/api/paas/v4",
                                .anthropic_base_url = origin + "/api/anthropic",
                                .api_key_env = key_env,
                                .auth = auth};
  auto provider = providers::make_openai_compatible(cfg);
  EXPECT_TRUE(provider);
  auto tls = providers::make_tls_context({});
  EXPECT_TRUE(tls);
  providers::UpstreamClient client(ioc.get_executor(), *tls, 4, 16);
  const std::string body = R"({"model":"claude-sonnet-4","max_tokens":64,"stream":)" + std::string(stream ? "true" : "false") +
                           R"(,"messages":[{"role":"user","content":"hi"}],"x_future":{"model":"keep"}})";
  providers::NativeRequest native{body, version, beta};
  providers::AttemptContext ctx;
  ctx.native = &native;
  ctx.target = {provider_name, "", "glm-5.2"};
  ctx.timeouts.idle = std::chrono::milliseconds(400);
  ctx.timeouts.total = std::chrono::milliseconds(15000);
  ctx.total_deadline = std::chrono::steady_clock::now() + ctx.timeouts.total;
  ctx.request_id = "req-1";
  ctx.client = &client;
  ctx.cancel = &cancel;
  asio::co_spawn(ioc, serve_once(acceptor, canned, out.seen), asio::detached);
  bool done = false;
  asio::co_spawn(
      ioc,
      [&]() -> core::Task<void> {
        co_await (*provider)->anthropic_messages(ctx, stream ? &out.sink : nullptr, out.res);
        done = true;
        ioc.stop();
      },
      asio::detached);
  ioc.run_for(std::chrono::seconds(20));
  EXPECT_TRUE(done) << "the attempt did not end within 20 s";
  out.hook_left = static_cast<bool>(cancel.fn);
  return out;
}

TEST(AnthropicRelay, StreamIsRelayedInOrderWithMessageStopWithheld) {
  auto r = run("glm", {{sse_response({kStart, kPing, kBlock, kHello, kBlockStop, kDelta, kStop})}}, true, SIZE_MAX,
               "interleaved-thinking-2025-05-14");
  ASSERT_FALSE(r.res.error) << r.res.error->message;
  EXPECT_EQ(r.sink.names(), (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                                       "content_block_delta", "content_block_stop", "message_delta"}));
  EXPECT_EQ(r.sink.events[3].second, kHello.second);  // data relayed byte for byte
  EXPECT_TRUE(r.res.native_complete);
  EXPECT_TRUE(r.res.content_sent);
  EXPECT_TRUE(r.res.request_sent);
  EXPECT_EQ(r.res.upstream_status, 200);
  EXPECT_EQ(r.res.finish_reason, "end_turn");
  EXPECT_EQ(r.res.usage.prompt_tokens, 70);
  EXPECT_EQ(r.res.usage.cached_tokens, 64);
  EXPECT_EQ(r.res.usage.completion_tokens, 22);
  EXPECT_EQ(r.res.relayed_tokens, 4);  // "Hello from glm": 14 bytes
  EXPECT_EQ(r.res.keepalives, 1);
  EXPECT_TRUE(r.res.usage.present);
  EXPECT_EQ(r.res.counted_prompt_tokens, -1);
  EXPECT_FALSE(r.hook_left);
  // What went upstream: the Anthropic path, only the top-level model rewritten, the API's headers.
  EXPECT_EQ(r.seen.head.substr(0, r.seen.head.find("\r\n")), "POST /api/anthropic/v1/messages HTTP/1.1");
  EXPECT_EQ(r.seen.body, R"({"model":"glm-5.2","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}],"x_future":{"model":"keep"}})");
  EXPECT_EQ(r.seen.header("authorization"), std::string("Bearer ") + kKey);
  EXPECT_EQ(r.seen.header("x-api-key"), "<absent>");
  EXPECT_EQ(r.seen.header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(r.seen.header("anthropic-beta"), "interleaved-thinking-2025-05-14");
  EXPECT_EQ(r.seen.header("accept"), "text/event-stream");
}

TEST(AnthropicRelay, PingsBeforeContentAreRelayedOnce) {
  auto r = run("glm", {{sse_response({kStart, kPing, kPing, kPing, kBlock, kHello, kBlockStop, kDelta, kStop})}}, true);
  ASSERT_FALSE(r.res.error) << r.res.error->message;
  EXPECT_EQ(r.sink.names(), (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                                       "content_block_delta", "content_block_stop", "message_delta"}));
  EXPECT_EQ(r.res.keepalives, 3);
}

TEST(AnthropicRelay, GlmJwtAndSelfHostedXApiKey) {
  ::setenv("GW_TEST_ANTHROPIC_JWT_KEY", "glmkeyid.glmsecret0123456789", 1);
  auto jwt = run("glm", {{sse_response({kStart, kBlock, kHello, kBlockStop, kDelta, kStop})}}, true, SIZE_MAX, "", "",
                 "jwt", "GW_TEST_ANTHROPIC_JWT_KEY");
  ASSERT_FALSE(jwt.res.error) << jwt.res.error->message;
  EXPECT_EQ(jwt.seen.header("authorization").rfind("Bearer eyJ", 0), 0u) << jwt.seen.header("authorization");
  EXPECT_EQ(jwt.seen.header("authorization").find("glmsecret"), std::string::npos);
  EXPECT_EQ(jwt.seen.header("x-api-key"), "<absent>");
  auto vllm = run("openai_compatible", {{sse_response({kStart, kBlock, kHello, kBlockStop, kDelta, kStop})}}, true);
  ASSERT_FALSE(vllm.res.error) << vllm.res.error->message;
  EXPECT_EQ(vllm.seen.header("x-api-key"), kKey);
  EXPECT_EQ(vllm.seen.header("authorization"), "<absent>");
}

TEST(AnthropicRelay, DeepSeekGetsTheKeyInXApiKeyAndTheClientsVersion) {
  auto r = run("deepseek", {{sse_response({kStart, kBlock, kHello, kBlockStop, kDelta, kStop})}}, true, SIZE_MAX, "",
               "2024-01-01");
  ASSERT_FALSE(r.res.error) << r.res.error->message;
  EXPECT_EQ(r.seen.header("x-api-key"), kKey);
  EXPECT_EQ(r.seen.header("authorization"), "<absent>");
  EXPECT_EQ(r.seen.header("anthropic-version"), "2024-01-01");
  EXPECT_EQ(r.seen.header("anthropic-beta"), "<absent>");
}

TEST(AnthropicRelay, ErrorEventBeforeContentLeavesTheClientUntouched) {
  // Nothing reached the client: the attempt can fail over as an overloaded upstream.
  auto r = run("glm", {{sse_response({kStart, kPing, kBlock, kOverloaded})}}, true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::overloaded);
  EXPECT_TRUE(r.res.error->retryable());
  EXPECT_FALSE(r.res.content_sent);
  EXPECT_TRUE(r.sink.events.empty());
  EXPECT_TRUE(r.res.request_sent);
}

TEST(AnthropicRelay, ErrorEventAfterContentEndsTheAttemptInBand) {
  auto r = run("glm", {{sse_response({kStart, kBlock, kHello, kOverloaded})}}, true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::overloaded);
  EXPECT_TRUE(r.res.content_sent);
  EXPECT_FALSE(r.res.native_complete);
  EXPECT_EQ(r.sink.names(), (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta"}));
  // No final usage: the gateway accounts the output relayed, and message_start's exact prompt count.
  EXPECT_FALSE(r.res.usage.present);
  EXPECT_EQ(r.res.counted_prompt_tokens, 70);
  EXPECT_EQ(r.res.relayed_tokens, 4);
}

TEST(AnthropicRelay, StreamCutBeforeTheEndIsAnUpstreamFailure) {
  auto r = run("glm", {{sse_response({kStart, kBlock, kHello})}}, true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::server_error);
  EXPECT_NE(r.res.error->message.find("before the answer was complete"), std::string::npos) << r.res.error->message;
  EXPECT_TRUE(r.res.content_sent);
  EXPECT_EQ(r.res.relayed_tokens, 4);
}

TEST(AnthropicRelay, StreamEndingAfterTheStopReasonIsComplete) {
  // No message_stop: the gateway's own ends the answer.
  auto r = run("glm", {{sse_response({kStart, kBlock, kHello, kBlockStop, kDelta})}}, true);
  ASSERT_FALSE(r.res.error) << r.res.error->message;
  EXPECT_TRUE(r.res.native_complete);
}

TEST(AnthropicRelay, StalledStreamTimesOutOnTheIdleDeadline) {
  // Pings keep the socket alive, not the answer.
  std::string head = sse_response({kStart, kBlock, kHello});
  std::string pings;
  for (int i = 0; i < 3; ++i) pings += "event: ping\ndata: {\"type\":\"ping\"}\n\n";
  auto r = run("glm", {{head, pings}, true}, true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::timeout);
  EXPECT_NE(r.res.error->message.find("sent no stream event for 400 ms"), std::string::npos) << r.res.error->message;
  EXPECT_TRUE(r.res.content_sent);
}

TEST(AnthropicRelay, ClientGoneStopsTheRelay) {
  auto r = run("glm", {{sse_response({kStart, kBlock, kHello, kBlockStop, kDelta, kStop})}, true}, true, 2);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::cancelled);
  EXPECT_TRUE(r.res.content_sent);
  EXPECT_TRUE(r.res.request_sent);
  EXPECT_EQ(r.sink.events.size(), 2u);
}

TEST(AnthropicRelay, CancelHookAbortsTheStreamAndLeavesNoHookBehind) {
  // The upstream stalls after content; the gateway's cancel (client gone, drain) must not wait for
  // the idle deadline.
  auto r = run("glm", {{sse_response({kStart, kBlock, kHello})}, true}, true, SIZE_MAX, "", "", "",
               "GW_TEST_ANTHROPIC_KEY", true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::cancelled) << r.res.error->message;
  EXPECT_TRUE(r.res.request_sent);
  EXPECT_TRUE(r.res.content_sent);
  EXPECT_FALSE(r.hook_left);
}

TEST(AnthropicRelay, GlmOutOfBalanceIsNotARateLimit) {
  auto r = run("glm",
               {{json_response(429, R"({"type":"error","error":{"type":"rate_limit_error","code":"1113","message":"Insufficient balance"}})",
                               "Retry-After: 2\r\n")}},
               true);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::out_of_balance);
  EXPECT_EQ(r.res.upstream_status, 429);
  EXPECT_FALSE(r.hook_left);
  EXPECT_FALSE(r.res.request_sent);
  EXPECT_FALSE(r.res.content_sent);
  EXPECT_TRUE(r.sink.events.empty());
}

TEST(AnthropicRelay, OverloadedStatusFailsOver) {
  auto r = run("deepseek", {{json_response(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})")}}, false);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::overloaded);
  EXPECT_TRUE(r.res.error->retryable());
}

TEST(AnthropicRelay, NonStreamBodyIsReturnedAsItCame) {
  const std::string message =
      R"({"id":"msg_2","type":"message","role":"assistant","model":"glm-5.2","content":[{"type":"text","text":"Hi"}],)"
      R"("stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":10,"output_tokens":3}})";
  auto r = run("glm", {{json_response(200, message)}}, false);
  ASSERT_FALSE(r.res.error) << r.res.error->message;
  EXPECT_EQ(r.res.body, message);
  EXPECT_EQ(r.res.usage.prompt_tokens, 15);
  EXPECT_EQ(r.res.usage.cache_write_tokens, 10);
  EXPECT_EQ(r.res.usage.completion_tokens, 3);
  EXPECT_EQ(r.res.finish_reason, "end_turn");
  EXPECT_EQ(r.seen.header("accept"), "application/json");
}

TEST(AnthropicRelay, NonStreamGarbageIsAnUpstreamFailure) {
  auto r = run("glm", {{json_response(200, "<html>502 Bad Gateway</html>")}}, false);
  ASSERT_TRUE(r.res.error);
  EXPECT_EQ(r.res.error->kind, ErrorKind::server_error);
  EXPECT_TRUE(r.res.error->retryable());
}

}  // namespace
