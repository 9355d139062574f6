#include "routing/what_if.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/json_writer.h"

namespace routing {
namespace {

WhatIfChoice choice_of(const Decision& d) {
  WhatIfChoice c;
  if (d.error) {
    c.error = d.error->message;
    return c;
  }
  const CompiledPolicy& p = *d.policy;
  const size_t limit = d.route ? static_cast<size_t>(d.route->max_attempts) : 0;
  for (size_t i = 0; i < d.ranked.size() && i < limit; ++i)
    c.plan.push_back(p.deployments[d.evals[d.ranked[i]].deployment].deployment.id);
  if (c.plan.empty()) {
    c.error = "no deployment qualifies";
    return c;
  }
  const CandidateEval& first = d.evals[d.ranked[0]];
  const Deployment& dep = p.deployments[first.deployment].deployment;
  c.served = true;
  c.deployment = dep.id;
  c.vendor = dep.provider;
  c.est_cost_usd = first.est_cost_usd;
  return c;
}

std::string pct(double v, bool sign) {
  char buf[32];
  std::snprintf(buf, sizeof buf, sign ? "%+.0f %%" : "%.0f %%", v);
  return buf;
}

void json_number(std::string& o, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", std::isfinite(v) ? v : 0.0);
  o += buf;
}

void json_choice(std::string& o, const WhatIfChoice& c) {
  o += "{\"served\":";
  o += c.served ? "true" : "false";
  if (c.served) {
    o += ",\"deployment\":";
    core::append_json_string(o, c.deployment);
    o += ",\"vendor\":";
    core::append_json_string(o, c.vendor);
    o += ",\"est_cost_usd\":";
    json_number(o, c.est_cost_usd);
    o += ",\"plan\":[";
    for (size_t i = 0; i < c.plan.size(); ++i) {
      if (i) o += ',';
      core::append_json_string(o, c.plan[i]);
    }
    o += ']';
  } else {
    o += ",\"error\":";
    core::append_json_string(o, c.error);
  }
  o += '}';
}

void json_shares(std::string& o, const std::map<std::string, double>& shares) {
  o += '{';
  bool first = true;
  for (const auto& [vendor, share] : shares) {
    if (!first) o += ',';
    first = false;
    core::append_json_string(o, vendor);
    o += ':';
    json_number(o, share);
  }
  o += '}';
}

// "moves 62 % of traffic to deepseek, 8 % to kimi": every vendor whose share grew, largest first.
std::string gains_text(const WhatIfSummary& s) {
  std::vector<std::pair<double, std::string>> gains;
  for (const auto& [vendor, after] : s.share_after_pct) {
    auto it = s.share_before_pct.find(vendor);
    const double gain = after - (it == s.share_before_pct.end() ? 0 : it->second);
    if (gain > 0) gains.emplace_back(gain, vendor);
  }
  std::sort(gains.begin(), gains.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (gains.empty()) return "moves no traffic";
  std::string out = "moves ";
  for (size_t i = 0; i < gains.size(); ++i)
    out += (i ? ", " : "") + pct(gains[i].first, false) + (i ? " to " : " of traffic to ") + gains[i].second;
  return out;
}

}  // namespace

WhatIfSummary summarize_what_if(const std::vector<WhatIfRow>& rows, const std::string& scenario) {
  WhatIfSummary s;
  s.requests = rows.size();
  std::map<std::string, size_t> before, after;
  for (const auto& r : rows) {
    if (r.before.served) ++before[r.before.vendor];
    else ++s.unservable_before;
    if (r.after.served) ++after[r.after.vendor];
    else ++s.unservable_after;
    if (r.before.served && !r.after.served) ++s.became_unservable;
    if (r.before.served && r.after.served) {
      s.cost_before_usd += r.before.est_cost_usd;
      s.cost_after_usd += r.after.est_cost_usd;
      if (r.before.vendor != r.after.vendor) ++s.moved;
    }
  }
  const double n = s.requests ? static_cast<double>(s.requests) : 1.0;
  for (const auto& [v, c] : before) s.share_before_pct[v] = 100.0 * static_cast<double>(c) / n;
  for (const auto& [v, c] : after) s.share_after_pct[v] = 100.0 * static_cast<double>(c) / n;
  if (s.cost_before_usd > 0) s.cost_change_pct = (s.cost_after_usd - s.cost_before_usd) / s.cost_before_usd * 100.0;
  s.text = "suspending " + scenario + " " + gains_text(s) + ", cost " + pct(s.cost_change_pct, true) + "; " +
           std::to_string(s.became_unservable) + " of " + std::to_string(s.requests) + " requests become unservable";
  return s;
}

std::vector<WhatIfRow> plan_what_if(const PolicyRouter& router, const std::vector<RequestFeatures>& requests,
                                    const SuspensionList& what_if) {
  std::vector<WhatIfRow> rows;
  rows.reserve(requests.size());
  for (const auto& f : requests) rows.push_back({choice_of(router.decide(f)), choice_of(router.decide(f, &what_if))});
  return rows;
}

core::Result<SuspensionList> what_if_suspensions(const std::vector<std::string>& selectors,
                                                 const std::vector<DeploymentFacts>& deployments) {
  SuspensionList out;
  for (const auto& text : selectors) {
    auto sel = parse_suspension_selector(text, deployments);
    if (!sel) return sel.error();
    Suspension s;
    s.id = "what-if";
    s.selector = *sel;
    s.reason = "what-if";
    s.since = "now";
    out.push_back(std::move(s));
  }
  return out;
}

std::string what_if_json(const PolicyRouter& router, const std::vector<RequestFeatures>& requests,
                         const SuspensionList& what_if) {
  std::string scenario;
  for (const auto& s : what_if) scenario += (scenario.empty() ? "" : " + ") + s.selector.text();
  const auto rows = plan_what_if(router, requests, what_if);
  const WhatIfSummary s = summarize_what_if(rows, scenario);
  std::string o = "{\"what_if\":[";
  for (size_t i = 0; i < what_if.size(); ++i) {
    if (i) o += ',';
    core::append_json_string(o, what_if[i].selector.text());
  }
  o += "],\"requests\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i) o += ',';
    o += "{\"model\":";
    core::append_json_string(o, requests[i].model);
    o += ",\"before\":";
    json_choice(o, rows[i].before);
    o += ",\"after\":";
    json_choice(o, rows[i].after);
    o += '}';
  }
  o += "],\"summary\":{\"requests\":" + std::to_string(s.requests) +
       ",\"unservable_before\":" + std::to_string(s.unservable_before) +
       ",\"unservable_after\":" + std::to_string(s.unservable_after) +
       ",\"became_unservable\":" + std::to_string(s.became_unservable) + ",\"moved\":" + std::to_string(s.moved) +
       ",\"cost_before_usd\":";
  json_number(o, s.cost_before_usd);
  o += ",\"cost_after_usd\":";
  json_number(o, s.cost_after_usd);
  o += ",\"cost_change_pct\":";
  json_number(o, s.cost_change_pct);
  o += ",\"share_before_pct\":";
  json_shares(o, s.share_before_pct);
  o += ",\"share_after_pct\":";
  json_shares(o, s.share_after_pct);
  o += ",\"text\":";
  core::append_json_string(o, s.text);
  o += '}';
  if (requests.size() == 1) {
    o += ",\"explain_before\":" + router.explain_json(requests[0]);
    o += ",\"explain_after\":" + router.explain_json(requests[0], &what_if);
  }
  o += '}';
  return o;
}

}  // namespace routing
