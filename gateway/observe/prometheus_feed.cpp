#include "gateway/observe/prometheus_feed.h"

#include <simdjson.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace gateway {
namespace {

std::string form_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out.push_back(static_cast<char>(c));
    else if (c == ' ') out.push_back('+');
    else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// Attempt-weighted mean across replicas: a replica that sent nothing to a deployment has no say.
std::string weighted(const char* metric) {
  return std::string("sum by (deployment) (") + metric + " * routing_attempts_total) / sum by (deployment) (routing_attempts_total)";
}

}  // namespace

const std::vector<FleetQuery>& fleet_queries() {
  static const std::vector<FleetQuery> q = {
      {"ttft_ms", weighted("routing_ttft_seconds_ewma"), 1000.0},
      {"tokens_per_second", weighted("routing_tokens_per_second_ewma"), 1.0},
      {"error_rate", weighted("routing_error_rate_ewma"), 1.0},
      {"rate_limited_rate", weighted("routing_rate_limited_rate_ewma"), 1.0},
      {"in_flight", "sum by (deployment) (routing_in_flight)", 1.0},
  };
  return q;
}

core::Result<std::map<std::string, double>> parse_prometheus_vector(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string p(body);
  simdjson::dom::element root;
  if (parser.parse(p).get(root) != simdjson::SUCCESS || !root.is_object())
    return core::make_error(core::ErrorKind::server_error, "Prometheus answer is not JSON", core::ErrorSource::upstream);
  std::string_view status;
  if (root["status"].get(status) != simdjson::SUCCESS || status != "success")
    return core::make_error(core::ErrorKind::server_error, "Prometheus query failed: " + std::string(body.substr(0, 300)),
                            core::ErrorSource::upstream);
  simdjson::dom::array result;
  if (root["data"]["result"].get(result) != simdjson::SUCCESS)
    return core::make_error(core::ErrorKind::server_error, "Prometheus answer has no data.result", core::ErrorSource::upstream);
  std::map<std::string, double> out;
  for (simdjson::dom::element r : result) {
    std::string_view dep, val;
    simdjson::dom::array value;
    if (r["metric"]["deployment"].get(dep) != simdjson::SUCCESS) continue;
    if (r["value"].get(value) != simdjson::SUCCESS || value.size() != 2) continue;
    if (value.at(1).get(val) != simdjson::SUCCESS) continue;
    std::string v(val);
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || !std::isfinite(d)) continue;
    out[std::string(dep)] = d;
  }
  return out;
}

core::Task<void> run_prometheus_feed(FleetFeed feed, providers::UpstreamClient& client) {
  namespace asio = boost::asio;
  auto ep = providers::parse_endpoint(feed.url);
  if (!ep) {
    std::fprintf(stderr, "gateway: routing.prometheus_url: %s\n", ep.error().message.c_str());
    co_return;
  }
  std::fprintf(stderr, "gateway: routing figures from Prometheus at %s every %lld ms\n", feed.url.c_str(),
               static_cast<long long>(feed.interval.count()));
  core::SteadyTimer timer(co_await asio::this_coro::executor);
  providers::UpstreamTimeouts t;
  t.connect = t.tls = t.first_byte = t.idle = std::chrono::milliseconds(2000);
  t.total = std::chrono::milliseconds(5000);
  bool last_ok = true;
  while (!feed.draining->load()) {
    std::map<std::string, routing::ExternalStats> stats;
    bool ok = true;
    std::string why;
    const std::string query_target = ep->base_path + "/api/v1/query";
    for (const auto& q : fleet_queries()) {
      providers::UpstreamRequest req;
      req.target = query_target;
      req.body = "query=" + form_encode(q.promql);
      req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
      auto deadline = std::chrono::steady_clock::now() + t.total;
      auto ex = co_await client.start(*ep, req, t, deadline);
      if (!ex) { ok = false; why = ex.error().message; break; }
      auto body = co_await (*ex)->read_all(deadline, 16 << 20);
      if (!body) { ok = false; why = body.error().message; break; }
      if ((*ex)->status() != 200) { ok = false; why = "HTTP " + std::to_string((*ex)->status()) + ": " + body->substr(0, 200); break; }
      auto vec = parse_prometheus_vector(*body);
      if (!vec) { ok = false; why = vec.error().message; break; }
      for (const auto& [dep, v] : *vec) {
        auto& s = stats[dep];
        double x = v * q.scale;
        std::string_view f = q.field;
        if (f == "ttft_ms") s.ttft_ms = x;
        else if (f == "tokens_per_second") s.tokens_per_second = x;
        else if (f == "error_rate") s.error_rate = x;
        else if (f == "rate_limited_rate") s.rate_limited_rate = x;
        else if (f == "in_flight") s.in_flight = x;
      }
    }
    feed.metrics->prometheus_feed(ok);
    if (ok) {
      if (const auto& r = feed.router)
        for (const auto& [dep, s] : stats) r->set_external_stats(dep, s);
      if (!last_ok) std::fprintf(stderr, "gateway: Prometheus feed recovered\n");
    } else if (last_ok) {
      // Logged once per outage; routing falls back to this replica's own figures meanwhile.
      std::fprintf(stderr, "gateway: Prometheus feed failed (%s); routing on local figures\n", why.c_str());
    }
    last_ok = ok;
    timer.expires_after(feed.interval);
    co_await timer.async_wait(asio::as_tuple(core::use_task));
  }
}

}  // namespace gateway
