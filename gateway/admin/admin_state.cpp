#include "gateway/admin/admin_state.h"

#include "gateway/admin/suspension_api.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "core/json_writer.h"
#include "core/money.h"

namespace gateway {
namespace {

using core::append_json_string;

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  out += buf;
}

void key(std::string& out, const char* name) {
  append_json_string(out, name);
  out += ':';
}

const char* availability_name(routing::Availability a) {
  switch (a) {
    case routing::Availability::available: return "available";
    case routing::Availability::probe: return "probe";
    case routing::Availability::probe_busy: return "probe_busy";
    case routing::Availability::open: return "open";
    case routing::Availability::cooldown: return "cooldown";
  }
  return "unknown";
}

void append_policy(std::string& out, const App& app) {
  key(out, "policy");
  auto policy = app.policy_router ? app.policy_router->policy() : nullptr;
  if (!policy) {
    out += "null";
    return;
  }
  const PolicyLoad last = app.policy_loads.last();
  out += '{';
  key(out, "name"), append_json_string(out, policy->name);
  out += ',', key(out, "file"), append_json_string(out, policy->file);
  out += ',', key(out, "generation"), out += std::to_string(app.policy_loads.generation());
  out += ',', key(out, "reloads_ok"), out += std::to_string(app.policy_router->reloads_ok());
  out += ',', key(out, "reloads_failed"), out += std::to_string(app.policy_router->reloads_failed());
  out += ',', key(out, "last_load"), out += '{';
  key(out, "at_ms"), out += std::to_string(last.at_ms);
  out += ',', key(out, "trigger"), append_json_string(out, last.trigger);
  out += ',', key(out, "ok"), out += last.ok ? "true" : "false";
  out += ',', key(out, "message"), append_json_string(out, last.message);
  out += "}}";
}

// Deployments a provider instance is configured for, with the figures routing reads now.
void append_deployments(std::string& out, const App& app) {
  key(out, "deployments");
  out += '[';
  auto policy = app.policy_router ? app.policy_router->policy() : nullptr;
  if (!policy) {
    out += ']';
    return;
  }
  std::map<std::string, std::map<std::string, double>> figures;
  for (const auto& s : app.policy_router->stats_samples()) figures[s.deployment][s.metric] = s.value;
  double attempts_sum = 0;
  for (const auto& [id, f] : figures) attempts_sum += f.count("routing_attempts_total") ? f.at("routing_attempts_total") : 0;
  const auto& live = app.policy_router->live_stats();
  const auto now = live.clock().steady_now();
  bool first = true;
  for (const auto& d : policy->deployments) {
    if (!d.configured) continue;
    const auto& id = d.deployment.id;
    auto stats = live.find(id);
    const auto av = stats ? stats->availability(now) : routing::AvailabilityCheck{};
    const auto circuit = stats ? stats->circuit(now) : routing::CircuitState::closed;
    const auto fit = figures.find(id);
    if (!first) out += ',';
    first = false;
    out += '{';
    key(out, "id"), append_json_string(out, id);
    out += ',', key(out, "provider"), append_json_string(out, d.deployment.provider);
    out += ',', key(out, "region"), append_json_string(out, d.deployment.region);
    out += ',', key(out, "model"), append_json_string(out, d.deployment.model);
    out += ',', key(out, "has_credentials"), out += d.has_credentials ? "true" : "false";
    out += ',', key(out, "availability"), append_json_string(out, availability_name(av.state));
    out += ',', key(out, "cause"), append_json_string(out, av.cause ? av.cause : "");
    out += ',', key(out, "wait_ms"), out += std::to_string(av.wait_ms);
    out += ',', key(out, "circuit"), append_json_string(out, routing::to_string(circuit));
    double attempts = 0;
    if (fit != figures.end() && fit->second.count("routing_attempts_total")) attempts = fit->second.at("routing_attempts_total");
    out += ',', key(out, "traffic_share"), append_number(out, attempts_sum > 0 ? attempts / attempts_sum : 0);
    out += ',', key(out, "figures"), out += '{';
    if (fit != figures.end()) {
      bool f1 = true;
      for (const auto& [metric, value] : fit->second) {
        if (!f1) out += ',';
        f1 = false;
        append_json_string(out, metric);
        out += ':';
        append_number(out, value);
      }
    }
    out += "}}";
  }
  out += ']';
}

void append_routes(std::string& out, const App& app) {
  key(out, "routes");
  out += '[';
  auto policy = app.policy_router ? app.policy_router->policy() : nullptr;
  bool first = true;
  for (const auto& r : policy ? policy->routes : std::vector<routing::Route>{}) {
    // Per-model routes keep one candidate list per requested model; sorted for a stable page.
    std::map<std::string, const std::vector<routing::RouteCandidate>*> lists;
    for (const auto& [model, list] : r.candidates) lists[model] = &list;
    for (const auto& [model, list] : lists) {
      if (!first) out += ',';
      first = false;
      out += '{';
      key(out, "name"), append_json_string(out, r.name);
      out += ',', key(out, "model"), append_json_string(out, model);
      out += ',', key(out, "max_attempts"), out += std::to_string(r.max_attempts);
      out += ',', key(out, "candidates"), out += '[';
      for (size_t i = 0; i < list->size(); ++i) {
        const auto& c = (*list)[i];
        if (i) out += ',';
        out += '{';
        key(out, "deployment"), append_json_string(out, policy->deployments[c.deployment].deployment.id);
        out += ',', key(out, "static_exclusion"), append_json_string(out, c.static_exclusion);
        out += '}';
      }
      out += "]}";
    }
  }
  out += ']';
}

void append_tenants(std::string& out, const std::vector<BudgetStatus>& budgets) {
  std::map<std::string, std::vector<const BudgetStatus*>> by_tenant;
  for (const auto& b : budgets) by_tenant[b.tenant].push_back(&b);
  key(out, "tenants");
  out += '[';
  bool first = true;
  for (const auto& [tenant, list] : by_tenant) {
    if (!first) out += ',';
    first = false;
    out += '{';
    key(out, "tenant"), append_json_string(out, tenant);
    out += ',', key(out, "budgets"), out += '[';
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& b = *list[i];
      if (i) out += ',';
      out += '{';
      key(out, "period"), append_json_string(out, b.period);
      out += ',', key(out, "hard"), out += b.hard ? "true" : "false";
      out += ',', key(out, "limit_usd"), append_json_string(out, core::format_usd(b.limit));
      out += ',', key(out, "spent_usd"), append_json_string(out, core::format_usd(b.spent));
      out += ',', key(out, "reserved_usd"), append_json_string(out, core::format_usd(b.reserved));
      out += ',', key(out, "remaining_usd"), append_json_string(out, core::format_usd(b.remaining));
      out += '}';
    }
    out += "]}";
  }
  out += ']';
}

void append_refusals(std::string& out, const App& app) {
  key(out, "refusals");
  out += '{';
  key(out, "total"), out += std::to_string(app.refusals.total());
  out += ',', key(out, "recent"), out += '[';
  bool first = true;
  for (const auto& r : app.refusals.recent()) {
    if (!first) out += ',';
    first = false;
    out += '{';
    key(out, "at_ms"), out += std::to_string(r.at_ms);
    out += ',', key(out, "request_id"), append_json_string(out, r.request_id);
    out += ',', key(out, "tenant"), append_json_string(out, r.tenant);
    out += ',', key(out, "model"), append_json_string(out, r.model);
    out += ',', key(out, "status"), out += std::to_string(r.status);
    out += ',', key(out, "kind"), append_json_string(out, r.kind);
    out += ',', key(out, "code"), append_json_string(out, r.code);
    out += ',', key(out, "message"), append_json_string(out, r.message);
    out += '}';
  }
  out += "]}";
}

// Every suspension in effect (the kill switch), as GET /admin/suspend lists them.
void append_suspensions(std::string& out, const App& app) {
  key(out, "suspensions");
  out += '[';
  if (app.policy_router) {
    auto all = app.policy_router->suspensions();
    for (size_t i = 0; i < all->size(); ++i) {
      if (i) out += ',';
      out += suspension_json((*all)[i]);
    }
  }
  out += ']';
}

}  // namespace

std::string admin_state_json(const App& app, const std::vector<BudgetStatus>& budgets, const std::string& spend_today) {
  std::string out = "{";
  key(out, "generated_ms"), out += std::to_string(wall_ms_now());
  out += ',', append_policy(out, app);
  out += ',', append_deployments(out, app);
  out += ',', append_routes(out, app);
  out += ',', append_tenants(out, budgets);
  out += ',', key(out, "spend_today"), out += spend_today.empty() ? "null" : spend_today;
  out += ',', append_refusals(out, app);
  out += ',', append_suspensions(out, app);
  out += '}';
  return out;
}

}  // namespace gateway
