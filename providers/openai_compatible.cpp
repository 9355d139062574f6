#include "providers/openai_compatible.h"

#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "providers/error_map.h"
#include "providers/glm_jwt.h"
#include "providers/openai_normalize.h"
#include "providers/request_builder.h"
#include "providers/sse_reader.h"

namespace providers {
namespace {

namespace asio = boost::asio;
using core::ErrorKind;
using core::ErrorSource;
using Micros = std::chrono::microseconds;

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMaxResponseBody = 64 * 1024 * 1024;

class OpenAICompatibleProvider final : public Provider {
 public:
  OpenAICompatibleProvider(ProviderConfig cfg, const Dialect& dialect, std::map<std::string, Endpoint> endpoints,
                           std::string default_region, std::string key, std::string unavailable_reason,
                           AuthScheme auth)
      : cfg_(std::move(cfg)), dialect_(dialect), endpoints_(std::move(endpoints)),
        default_region_(std::move(default_region)), key_(std::move(key)),
        unavailable_reason_(std::move(unavailable_reason)), auth_(auth) {
    // Fixed per provider: computed once, not per request.
    for (const auto& [region, ep] : endpoints_) chat_targets_[region] = ep.base_path + "/chat/completions";
    if (auth_ == AuthScheme::bearer && !key_.empty()) bearer_ = "Bearer " + key_;
  }

  const std::string& name() const override { return cfg_.name; }
  const Dialect& dialect() const override { return dialect_; }
  const std::string& default_region() const override { return default_region_; }
  std::vector<std::string> regions() const override {
    std::vector<std::string> r;
    for (const auto& [k, v] : endpoints_) r.push_back(k);
    return r;
  }
  bool available() const override { return unavailable_reason_.empty(); }
  std::string unavailable_reason() const override { return unavailable_reason_; }

  core::Task<AttemptResult> chat(const AttemptContext& ctx, ChatSink* sink) override {
    AttemptResult res;
    const auto started = std::chrono::steady_clock::now();
    const std::string& region = ctx.target.region.empty() ? default_region_ : ctx.target.region;
    auto ep = endpoints_.find(region);
    if (ep == endpoints_.end()) {
      res.error = core::make_error(ErrorKind::internal,
                                   "provider '" + cfg_.name + "' has no region '" + region + "'", ErrorSource::gateway);
      co_return res;
    }
    if (!available()) {
      res.error = core::make_error(ErrorKind::unavailable, unavailable_reason_, ErrorSource::gateway);
      co_return res;
    }
    const bool stream = sink != nullptr;
    auto body = build_upstream_body(ctx.request->raw_body, ctx.target.model, stream);
    if (!body) {
      res.error = std::move(body).error();
      co_return res;
    }
    UpstreamRequest req;
    req.target = chat_targets_.at(region);
    req.body = std::move(body).value();
    req.headers.reserve(4 + cfg_.extra_headers.size());
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
    req.headers.emplace_back("X-Request-Id", ctx.request_id);
    std::string jwt_header;  // lives in this frame: the request holds a view of it
    auto auth_value = authorization(jwt_header);
    if (!auth_value) {
      res.error = std::move(auth_value).error();
      co_return res;
    }
    if (!auth_value->empty()) req.headers.emplace_back("Authorization", *auth_value);
    for (const auto& [k, v] : cfg_.extra_headers) req.headers.emplace_back(k, v);

    auto started_ex = co_await ctx.client->start(ep->second, req, ctx.timeouts, ctx.total_deadline);
    if (!started_ex) {
      res.error = std::move(started_ex).error();
      co_return res;
    }
    std::unique_ptr<UpstreamExchange> ex = std::move(started_ex).value();
    UpstreamExchange* raw = ex.get();
    if (ctx.cancel) {
      if (ctx.cancel->cancelled) raw->cancel();
      ctx.cancel->fn = [raw] { raw->cancel(); };
    }
    struct ClearHook {
      CancelHook* h;
      ~ClearHook() { if (h) h->fn = nullptr; }
    } clear{ctx.cancel};

    res.upstream_status = ex->status();
    if (res.upstream_status != 200) {
      auto err_body = co_await ex->read_all(std::min(ctx.total_deadline, std::chrono::steady_clock::now() + ctx.timeouts.idle),
                                            kMaxErrorBody);
      res.error = classify_upstream_error(dialect_, res.upstream_status, err_body ? std::string_view(*err_body) : "",
                                          ex->header("Retry-After"));
      co_return res;
    }
    if (!stream) {
      auto all = co_await ex->read_all(ctx.total_deadline, kMaxResponseBody);
      if (!all) {
        res.error = std::move(all).error();
        co_return res;
      }
      auto norm = normalize_response(dialect_, *all);
      if (!norm) {
        res.error = std::move(norm).error();
        co_return res;
      }
      res.body = std::move(norm->body);
      res.usage = norm->usage;
      res.finish_reason = norm->finish_reason;
      res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
      co_return res;
    }
    co_await relay_stream(ctx, *ex, *sink, started, res);
    co_return res;
  }

 private:
  // The Authorization value (empty: none), valid while `scratch` and this provider live.
  core::Result<std::string_view> authorization(std::string& scratch) const {
    if (auth_ == AuthScheme::none || key_.empty()) return std::string_view();
    if (auth_ == AuthScheme::glm_jwt) {
      auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      auto tok = glm_jwt(key_, now_ms, 3600 * 1000);
      if (!tok) return std::move(tok).error();
      scratch = "Bearer " + *tok;
      return std::string_view(scratch);
    }
    return std::string_view(bearer_);
  }

  // Relays SSE events as they arrive. Chunks without content (role-only deltas) are held back until
  // the first content chunk, so that a failure before any content can still fail over cleanly.
  core::Task<void> relay_stream(const AttemptContext& ctx, UpstreamExchange& ex, ChatSink& sink,
                                std::chrono::steady_clock::time_point started, AttemptResult& res) {
    SseReader reader;
    SseEvent ev;  // reused from event to event
    StreamNormalizer norm(dialect_, ctx.request->include_usage);
    std::vector<std::string> held;
    auto last_event = std::chrono::steady_clock::now();
    bool saw_done = false;
    for (;;) {
      auto deadline = std::min(ctx.total_deadline, last_event + ctx.timeouts.idle);
      auto piece = co_await ex.read_some(deadline);
      if (!piece) {
        core::Error e = std::move(piece).error();
        if (e.kind == ErrorKind::timeout || std::chrono::steady_clock::now() >= deadline) {
          bool total = std::chrono::steady_clock::now() >= ctx.total_deadline;
          e = core::make_error(ErrorKind::timeout,
                               dialect_.name + (total ? " exceeded the total deadline of " +
                                                            std::to_string(ctx.timeouts.total.count()) + " ms"
                                                      : " sent no stream event for " +
                                                            std::to_string(ctx.timeouts.idle.count()) + " ms"),
                               ErrorSource::upstream);
        }
        res.error = std::move(e);
        break;
      }
      if (piece->empty()) break;  // body complete
      if (!reader.feed(*piece)) {
        res.error = core::make_error(ErrorKind::server_error, dialect_.name + " sent an oversized stream event",
                                     ErrorSource::upstream);
        break;
      }
      bool stop = false;
      while (!stop && reader.next(ev)) {
        if (ev.comment_only) {
          ++res.keepalives;  // keep-alives prove the socket lives, not that the answer progresses
          continue;
        }
        last_event = std::chrono::steady_clock::now();
        if (ev.data.empty()) continue;
        auto step = norm.process(ev.data);
        switch (step.action) {
          case StreamNormalizer::Action::drop: break;
          case StreamNormalizer::Action::done: saw_done = true; stop = true; break;
          case StreamNormalizer::Action::error: res.error = step.error; stop = true; break;
          case StreamNormalizer::Action::forward:
            if (!res.content_sent && !step.content) {
              if (held.size() < 16) held.emplace_back(step.out);
              break;
            }
            if (!res.content_sent) {
              res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
              res.content_sent = true;
              for (const auto& h : held)
                if (!co_await sink.send(h)) { stop = true; break; }
              held.clear();
              if (stop) { client_gone(res); break; }
            }
            if (!co_await sink.send(step.out)) { stop = true; client_gone(res); }
            break;
        }
      }
      if (stop || res.error) break;
    }
    res.usage = norm.usage();
    res.finish_reason = norm.finish_reason();
    res.usage_chunk = norm.usage_chunk();
    if (!res.error && !saw_done && norm.finish_reason().empty()) {
      res.error = core::make_error(ErrorKind::server_error,
                                   dialect_.name + " closed the stream before the answer was complete",
                                   ErrorSource::upstream);
    }
    if (!res.error && !res.content_sent) {
      // A finished stream that never carried content (e.g. an empty answer): flush what was held.
      for (const auto& h : held)
        if (!co_await sink.send(h)) { client_gone(res); break; }
      res.content_sent = !held.empty();
    }
    co_return;
  }

  static void client_gone(AttemptResult& res) {
    res.error = core::make_error(ErrorKind::cancelled, "client disconnected", ErrorSource::client);
  }

  ProviderConfig cfg_;
  const Dialect& dialect_;
  std::map<std::string, Endpoint> endpoints_;
  std::string default_region_;
  std::string key_;
  std::string bearer_;                                // "Bearer <key>" for AuthScheme::bearer
  std::map<std::string, std::string> chat_targets_;  // region -> "<base path>/chat/completions"
  std::string unavailable_reason_;
  AuthScheme auth_;
};

std::string read_key_file(const std::string& path, std::string& error) {
  std::ifstream f(path);
  if (!f) {
    error = "cannot read api_key_file '" + path + "'";
    return {};
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

core::Result<std::unique_ptr<Provider>> make_openai_compatible(const ProviderConfig& config) {
  ProviderConfig cfg = config;
  if (cfg.type.empty()) cfg.type = cfg.name;
  const Dialect* d = find_dialect(cfg.type);
  if (!d || d->name == "local")
    return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "': unknown type '" + cfg.type +
                                                     "' (known: deepseek, qwen, kimi, glm, minimax, openai_compatible)");
  std::map<std::string, Endpoint> endpoints;
  std::string default_region = cfg.default_region.empty() ? d->default_region : cfg.default_region;
  auto add = [&](const std::string& region, const std::string& url) -> core::Status {
    auto ep = parse_endpoint(url);
    if (!ep) {
      core::Error e = std::move(ep).error();
      e.message = "provider '" + cfg.name + "' region '" + region + "': " + e.message;
      return e;
    }
    endpoints[region] = std::move(ep).value();
    return core::ok_status();
  };
  for (const auto& r : d->regions)
    if (!r.base_url.empty())
      if (auto s = add(r.region, r.base_url); !s) return s.error();
  if (d->name == "openai_compatible" && cfg.base_url.empty() && cfg.base_urls.empty())
    return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "' (openai_compatible) needs base_url");
  // On a built-in type, base_url replaces the configured region's URL (an egress proxy, a test fake):
  // the requests and the API key go there, never to the vendor's public host.
  if (!cfg.base_url.empty())
    if (auto s = add(default_region, cfg.base_url); !s) return s.error();
  for (const auto& [region, url] : cfg.base_urls)
    if (auto s = add(region, url); !s) return s.error();
  if (!endpoints.count(default_region))
    return core::make_error(ErrorKind::internal,
                            "provider '" + cfg.name + "': default region '" + default_region + "' has no base URL");

  AuthScheme auth = d->auth;
  if (cfg.auth == "jwt") {
    if (d->name != "glm")
      return core::make_error(ErrorKind::internal, "provider '" + cfg.name + "': auth 'jwt' exists only for glm");
    auth = AuthScheme::glm_jwt;
  } else if (cfg.auth == "none") {
    auth = AuthScheme::none;
  } else if (!cfg.auth.empty() && cfg.auth != "bearer") {
    return core::make_error(ErrorKind::internal,
                            "provider '" + cfg.name + "': auth must be bearer, jwt or none, not '" + cfg.auth + "'");
  }

  std::string key, unavailable;
  std::string env = cfg.api_key_env.empty() && cfg.api_key_file.empty() ? d->default_key_env : cfg.api_key_env;
  if (!cfg.api_key_file.empty()) {
    std::string err;
    key = read_key_file(cfg.api_key_file, err);
    if (!err.empty()) unavailable = "provider '" + cfg.name + "': " + err;
  } else if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (v && *v) key = v;
  }
  if (key.empty() && unavailable.empty() && d->key_required && auth != AuthScheme::none)
    unavailable = "provider '" + cfg.name + "' has no API key: set " + (env.empty() ? "api_key_env" : env);
  return std::unique_ptr<Provider>(std::make_unique<OpenAICompatibleProvider>(
      std::move(cfg), *d, std::move(endpoints), std::move(default_region), std::move(key), std::move(unavailable), auth));
}

}  // namespace providers
