#include "routing/policy_router.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "core/json_writer.h"
#include "routing/constraints.h"
#include "routing/pricing.h"
#include "routing/text_util.h"

namespace routing {
namespace {

uint64_t key_of(const std::string& id) { return std::hash<std::string>{}(id) | 1u; }

// check_rest = false tests the model only; `content` = nullptr leaves out the content conditions.
bool route_matches(const CompiledPolicy& p, const Route& r, const RequestFeatures& f, const std::string& classification,
                   bool check_model, bool check_rest, LazyContent* content = nullptr) {
  const Match& m = r.match;
  if (check_model && !m.models.empty()) {
    bool hit = false;
    for (const auto& pat : m.models) {
      if (pat == "$catalog") hit = std::binary_search(p.catalog_models.begin(), p.catalog_models.end(), f.model);
      else hit = glob_match(pat, f.model);
      if (hit) break;
    }
    if (!hit) return false;
  }
  if (!check_rest) return true;
  if (!m.tenants.empty() &&
      std::none_of(m.tenants.begin(), m.tenants.end(), [&](const std::string& t) { return glob_match(t, f.tenant); }))
    return false;
  if (!m.paths.empty() &&
      std::none_of(m.paths.begin(), m.paths.end(), [&](const std::string& t) { return glob_match(t, f.path); }))
    return false;
  for (const auto& [name, pat] : m.headers) {
    bool hit = false;
    for (const auto& [hn, hv] : f.headers)
      if (hn == name && glob_match(pat, hv)) {
        hit = true;
        break;
      }
    if (!hit) return false;
  }
  if (!m.data_classifications.empty() &&
      std::find(m.data_classifications.begin(), m.data_classifications.end(), classification) ==
          m.data_classifications.end())
    return false;
  return !content || m.content.empty() || content_matches(m.content, f, *content);
}

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void json_num(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  out += fmt(v, "%.9g");
}

core::Error invalid_header(const char* header, const char* code, const std::string& message) {
  return core::make_error(core::ErrorKind::bad_request, std::string(header) + " header: " + message,
                          core::ErrorSource::client, code, header);
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// The tenant's settings as one view: the gateway config's (authenticated tenant) first, then the
// policy's `tenants:` entry. A header may override a setting only if every source that sets it
// allows that.
struct TenantView {
  std::vector<ClientRegion> regions;
  std::string classification;
  std::vector<std::string> tags;
  bool override_region = true, override_classification = true, override_tags = true;
  bool has_region = false, has_classification = false, has_tags = false;
};

TenantView tenant_view(const CompiledPolicy& p, const RequestFeatures& f) {
  TenantView v;
  const TenantSettings* sources[2] = {f.tenant_settings, nullptr};
  if (!f.tenant.empty())
    if (auto it = p.tenants.find(f.tenant); it != p.tenants.end()) sources[1] = &it->second;
  for (const TenantSettings* t : sources) {
    if (!t) continue;
    if (!t->client_region.empty()) {
      // Validated when the setting was loaded.
      if (auto r = parse_region(t->client_region); r && !r->empty()) v.regions.push_back(*r);
      v.has_region = true;
      v.override_region &= t->override_region;
    }
    if (!t->data_classification.empty()) {
      if (v.classification.empty() ||
          classification_rank(t->data_classification) > classification_rank(v.classification))
        v.classification = t->data_classification;
      v.has_classification = true;
      v.override_classification &= t->override_classification;
    }
    if (!t->data_tags.empty()) {
      for (const auto& tag : t->data_tags) add_unique(v.tags, tag);
      v.has_tags = true;
      v.override_tags &= t->override_tags;
    }
  }
  return v;
}

// Regions whose rules apply: the tenant's (unless it lets the header override), plus the header's.
std::optional<core::Error> resolve_regions(const CompiledPolicy& p, const RequestFeatures& f, const TenantView& tenant,
                                           Decision& d) {
  std::string why;
  auto header = parse_region(f.client_region, &why);
  if (!header)
    return invalid_header("x-gateway-client-region", "invalid_client_region",
                          why + " (expected an ISO 3166-1 alpha-2 code, optionally with an ISO 3166-2 subdivision, "
                                "e.g. DE or UA-43)");
  std::vector<ClientRegion> regions;
  if (!tenant.has_region || (tenant.override_region && !header->empty())) {
    if (!header->empty()) regions.push_back(*header);
    else if (auto r = parse_region(p.defaults.client_region); r && !r->empty()) regions.push_back(*r);
  } else {
    regions = tenant.regions;
    if (!header->empty() && std::find(regions.begin(), regions.end(), *header) == regions.end())
      regions.push_back(*header);
  }
  if (!regions.empty()) {
    d.client_country = regions[0].country;
    d.client_subdivision = regions[0].subdivision;
    d.other_client_regions.assign(regions.begin() + 1, regions.end());
  }
  return std::nullopt;
}

// The header's classification and tags in their canonical spelling; unknown ones refused or dropped.
std::optional<core::Error> header_vocabulary(const CompiledPolicy& p, const RequestFeatures& f, bool reject_unknown,
                                             std::string& classification, std::vector<std::string>& tags) {
  classification = normalize_tag(f.data_classification);
  if (!classification.empty() && !p.vocabulary.known_classification(classification)) {
    if (reject_unknown)
      return invalid_header("x-gateway-data-classification", "invalid_data_classification",
                            "unknown data classification '" + f.data_classification + "'");
    classification.clear();
  }
  // Bounded: merging is quadratic in the number of tags, and no real request needs more.
  constexpr size_t kMaxHeaderTags = 64;
  if (f.data_tags.size() > kMaxHeaderTags)
    return invalid_header("x-gateway-data-tags", "invalid_data_tag",
                          std::to_string(f.data_tags.size()) + " tags; at most " + std::to_string(kMaxHeaderTags));
  for (const auto& raw : f.data_tags) {
    std::string t = normalize_tag(raw);
    if (t.empty()) continue;
    if (!p.vocabulary.known_tag(t)) {
      if (reject_unknown) return invalid_header("x-gateway-data-tags", "invalid_data_tag", "unknown data tag '" + raw + "'");
      continue;
    }
    add_unique(tags, t);
  }
  return std::nullopt;
}

// Classification for `match`: the stricter of the tenant's and the header's (the header's alone if the
// tenant lets it override); tags: the tenant's plus the header's, each classification applying as a tag.
void merge_classification_and_tags(const CompiledPolicy& p, const RequestFeatures& f, const TenantView& tenant,
                                   const std::string& header_class, const std::vector<std::string>& header_tags,
                                   Decision& d) {
  const bool class_replaced = tenant.override_classification && !header_class.empty();
  if (!tenant.has_classification || class_replaced) {
    d.data_classification = !header_class.empty() ? header_class : p.defaults.data_classification;
  } else {
    d.data_classification = tenant.classification;
    if (!header_class.empty() && classification_rank(header_class) > classification_rank(tenant.classification))
      d.data_classification = header_class;
  }
  const bool tags_replaced = tenant.has_tags && tenant.override_tags && !f.data_tags.empty();
  if (!tags_replaced) d.data_tags = tenant.tags;
  if (tenant.has_classification && !class_replaced) add_unique(d.data_tags, tenant.classification);
  for (const auto& t : header_tags) add_unique(d.data_tags, t);
  if (f.data_tags.empty() && !tenant.has_tags && !tenant.has_classification)
    for (const auto& t : p.defaults.data_tags) add_unique(d.data_tags, t);
  add_unique(d.data_tags, header_class);
  add_unique(d.data_tags, d.data_classification);
}

// "content":{"letters":..,"scripts":{"cjk":0.8,..},"code":..,"code_lines":..,"text_lines":..,
// "scanned_bytes":..,"truncated":..}: what the scan saw (scripts with no letters are left out).
void append_content_json(std::string& o, const ContentFeatures& c) {
  o += "\"content\":{\"letters\":" + std::to_string(c.letters) + ",\"scripts\":{";
  bool first = true;
  for (auto name : script_names()) {
    const Script s = *script_from_name(name);
    if (c.script_letters[static_cast<size_t>(s)] == 0) continue;
    if (!first) o += ',';
    first = false;
    core::append_json_string(o, name);
    o += ':';
    json_num(o, c.share(s));
  }
  o += "},\"code\":";
  o += c.code ? "true" : "false";
  o += ",\"fenced\":";
  o += c.fenced ? "true" : "false";
  o += ",\"code_lines\":" + std::to_string(c.code_lines) + ",\"text_lines\":" + std::to_string(c.text_lines) +
       ",\"scanned_bytes\":" + std::to_string(c.scanned_bytes) + ",\"truncated\":" + (c.truncated ? "true" : "false") +
       '}';
}

// "match":[{"route":..,"line":..,"matched":..,"conditions":[{"condition","want","actual","held"}]}]: the
// routes tried in order up to the one chosen, and which of their content conditions held (the other
// match keys together as one "model/tenant/path/headers/data_classification" condition).
void append_match_json(std::string& o, const CompiledPolicy& p, const RequestFeatures& f, const Decision& d) {
  o += "\"match\":[";
  LazyContent content(f);
  for (size_t i = 0; i < p.routes.size(); ++i) {
    const Route& r = p.routes[i];
    std::vector<ConditionResult> conds;
    const Match& m = r.match;
    if (!m.models.empty() || !m.tenants.empty() || !m.paths.empty() || !m.headers.empty() ||
        !m.data_classifications.empty()) {
      const bool held = route_matches(p, r, f, d.data_classification, true, true);
      conds.push_back({"model/tenant/path/headers/data_classification", "", held ? "match" : "no match", held});
    }
    content_matches(m.content, f, content, &conds);
    if (i) o += ',';
    o += "{\"route\":";
    core::append_json_string(o, r.name);
    o += ",\"line\":" + std::to_string(r.line) + ",\"matched\":";
    o += &r == d.route ? "true" : "false";
    o += ",\"conditions\":[";
    for (size_t k = 0; k < conds.size(); ++k) {
      if (k) o += ',';
      o += "{\"condition\":";
      core::append_json_string(o, conds[k].condition);
      if (!conds[k].want.empty()) {
        o += ",\"want\":";
        core::append_json_string(o, conds[k].want);
      }
      o += ",\"actual\":";
      core::append_json_string(o, conds[k].actual);
      o += ",\"held\":";
      o += conds[k].held ? "true}" : "false}";
    }
    o += "]}";
    if (&r == d.route) break;
  }
  o += ']';
}

}  // namespace

// The request's region, classification and tags. Header values are validated against the one
// vocabulary (400 naming the header); the tenant's settings are authoritative and a header only adds
// to them (another region whose rules apply too, more tags, a stricter classification) unless the
// tenant allows that header to override; without tenant settings the header applies, else the
// policy's `defaults:`.
std::optional<core::Error> resolve_request_facts(const CompiledPolicy& p, const RequestFeatures& f,
                                                 bool reject_unknown_tags, Decision& d) {
  d.client_country.clear();
  d.client_subdivision.clear();
  d.other_client_regions.clear();
  d.data_tags.clear();
  const TenantView tenant = tenant_view(p, f);
  if (auto e = resolve_regions(p, f, tenant, d)) return e;
  std::string header_class;
  std::vector<std::string> header_tags;
  if (auto e = header_vocabulary(p, f, reject_unknown_tags, header_class, header_tags)) return e;
  merge_classification_and_tags(p, f, tenant, header_class, header_tags, d);
  d.presets = f.tenant_settings ? f.tenant_settings->presets : 0;
  return std::nullopt;
}

namespace {

const char* kind_name(ExclusionKind k) {
  switch (k) {
    case ExclusionKind::policy: return "policy";
    case ExclusionKind::request: return "request";
    case ExclusionKind::unavailable: return "unavailable";
    case ExclusionKind::suspended: return "suspended";
  }
  return "policy";
}

}  // namespace

PolicyRouter::PolicyRouter(std::shared_ptr<const CompiledPolicy> policy, PolicyRouterOptions options)
    : options_(options),
      live_(std::make_shared<LiveStats>(options.breaker, options.clock)),
      affinity_(options.affinity_capacity, options.affinity_ttl),
      diversity_(std::make_shared<DiversityState>(options.clock)) {
  snapshot_.store(make_snapshot(std::move(policy)));
}

core::Result<std::unique_ptr<PolicyRouter>> PolicyRouter::from_file(const std::string& path,
                                                                    const std::vector<ProviderInstance>& providers,
                                                                    PolicyRouterOptions options) {
  auto compiled = compile_policy_file(path, *builtin_catalog(), providers);
  if (!compiled.ok()) return compiled.error();
  return std::make_unique<PolicyRouter>(std::move(compiled.value()), options);
}

std::shared_ptr<const PolicyRouter::Snapshot> PolicyRouter::make_snapshot(std::shared_ptr<const CompiledPolicy> policy) {
  auto snap = std::make_shared<Snapshot>();
  snap->stats.reserve(policy->deployments.size());
  for (const auto& d : policy->deployments) {
    auto s = live_->get_or_create(d.deployment.id);
    s->set_priors(d.prior_ttft_ms, d.prior_tokens_per_second, static_cast<double>(policy->default_output_tokens));
    snap->stats.push_back(std::move(s));
    snap->key.push_back(key_of(d.deployment.id));
  }
  auto all = std::make_shared<SuspensionList>(policy->suspended);
  if (runtime_suspensions_) all->insert(all->end(), runtime_suspensions_->begin(), runtime_suspensions_->end());
  snap->suspended = std::move(all);
  snap->policy = std::move(policy);
  return snap;
}

void PolicyRouter::swap_policy(std::shared_ptr<const CompiledPolicy> policy) {
  std::lock_guard lock(swap_mu_);
  snapshot_.store(make_snapshot(std::move(policy)));
}

void PolicyRouter::set_suspensions(std::shared_ptr<const SuspensionList> runtime) {
  std::lock_guard lock(swap_mu_);
  runtime_suspensions_ = std::move(runtime);
  snapshot_.store(make_snapshot(snapshot_.load()->policy));
}

std::map<std::string, uint64_t> PolicyRouter::suspension_exclusions() const {
  std::lock_guard lock(exclusions_mu_);
  return suspension_exclusions_;
}

// Once per request and suspension, however many of its candidates the suspension covered.
void PolicyRouter::count_suspension_exclusions(const Snapshot& snap, const Decision& d) const {
  std::vector<const Suspension*> seen;
  for (const auto& e : d.evals) {
    if (!e.excluded || e.kind != ExclusionKind::suspended) continue;
    const Suspension* s = find_suspension(*snap.suspended, snap.policy->deployments[e.deployment]);
    if (s && std::find(seen.begin(), seen.end(), s) == seen.end()) seen.push_back(s);
  }
  if (seen.empty()) return;
  std::lock_guard lock(exclusions_mu_);
  for (const Suspension* s : seen) ++suspension_exclusions_[s->selector.target];
}

core::Status PolicyRouter::reload(std::string_view yaml_text, std::string_view file_name,
                                  const std::vector<ProviderInstance>& providers) {
  auto compiled = compile_policy(yaml_text, file_name, *builtin_catalog(), providers);
  if (!compiled.ok()) {
    reloads_failed_.fetch_add(1);
    return compiled.error();
  }
  swap_policy(std::move(compiled.value()));
  reloads_ok_.fetch_add(1);
  return core::ok_status();
}

core::Status PolicyRouter::reload_file(const std::string& path, const std::vector<ProviderInstance>& providers) {
  auto compiled = compile_policy_file(path, *builtin_catalog(), providers);
  if (!compiled.ok()) {
    reloads_failed_.fetch_add(1);
    return compiled.error();
  }
  swap_policy(std::move(compiled.value()));
  reloads_ok_.fetch_add(1);
  return core::ok_status();
}

std::shared_ptr<const CompiledPolicy> PolicyRouter::policy() const { return snapshot_.load()->policy; }

std::vector<std::string> PolicyRouter::model_names() const { return snapshot_.load()->policy->model_names; }

void PolicyRouter::attempt_started(const std::string& deployment_id) { live_->attempt_started(deployment_id); }

void PolicyRouter::set_external_stats(const std::string& deployment_id, const ExternalStats& stats) {
  live_->set_external_stats(deployment_id, stats);
}

void PolicyRouter::record(const AttemptOutcome& outcome) {
  live_->record(outcome);
  if (outcome.ok && outcome.prefix_hash != 0)
    affinity_.put(outcome.prefix_hash, key_of(outcome.deployment), options_.clock->steady_now());
}

void PolicyRouter::evaluate(const Snapshot& snap, const RequestFeatures& f, Decision& d, bool full_rank,
                            const SuspensionList* what_if) const {
  const CompiledPolicy& p = *snap.policy;
  d.policy = snap.policy;
  d.route = nullptr;
  d.ranked.clear();
  d.error.reset();
  d.diversify.clear();
  d.content.reset();

  if (auto e = resolve_request_facts(p, f, options_.reject_unknown_data_tags, d)) {
    d.error = std::move(e);
    return;
  }

  LazyContent content(f);  // the prompt is scanned once, and only if a route tried asks
  for (const auto& r : p.routes)
    if (route_matches(p, r, f, d.data_classification, true, true, &content)) {
      d.route = &r;
      break;
    }
  d.content = content.computed();
  if (!d.route) {
    const bool model_known = std::any_of(p.routes.begin(), p.routes.end(), [&](const Route& r) {
      return route_matches(p, r, f, d.data_classification, true, false);
    });
    if (!model_known)
      d.error = core::make_error(core::ErrorKind::not_found,
                                 "model '" + f.model + "' does not exist in policy '" + p.name + "'",
                                 core::ErrorSource::gateway, "model_not_found", "model");
    else
      d.error = core::make_error(core::ErrorKind::forbidden,
                                 "no route of policy '" + p.name + "' matches this request (model '" + f.model +
                                     "', tenant '" + f.tenant + "', path '" + f.path + "')",
                                 core::ErrorSource::gateway, "no_route");
    return;
  }
  const Route& route = *d.route;
  const std::vector<RouteCandidate>* cands = nullptr;
  {
    auto it = route.candidates.find(route.per_model ? f.model : std::string());
    if (it != route.candidates.end()) cands = &it->second;
  }
  if (!cands || cands->empty()) {
    d.error = core::make_error(route.per_model ? core::ErrorKind::not_found : core::ErrorKind::unavailable,
                               "route '" + route.name + "' of policy '" + p.name + "' has no deployment for model '" +
                                   f.model + "'",
                               core::ErrorSource::gateway, route.per_model ? "model_not_found" : "no_deployment");
    return;
  }

  RequestContext ctx;
  ctx.client_country = d.client_country;
  ctx.client_subdivision = d.client_subdivision;
  ctx.data_classification = d.data_classification;
  ctx.data_tags = d.data_tags;
  for (const auto& r : d.other_client_regions) ctx.other_regions.emplace_back(r.country, r.subdivision);
  const std::string origin = origin_block_reason(ctx, p.operator_region);

  Capabilities need;
  need.tools = f.needs_tools;
  need.json = f.needs_json;
  need.vision = f.needs_vision;
  need.reasoning = f.needs_reasoning;
  need.embeddings = f.needs_embeddings;
  const Constraints& c = route.constraints;
  // The tenant's presets apply on every route: the ones the route already has were checked when
  // the policy compiled, the rest are checked here.
  const uint32_t presets = c.presets | d.presets;
  const uint32_t tenant_only_presets = d.presets & ~c.presets;
  const bool dyn_presets = (presets & (kPresetUsRegulatedEnterprise | kPresetEuGdpr | kPresetChinaDomestic)) != 0;
  const auto now = options_.clock->steady_now();
  const auto wall = options_.clock->wall_now();
  const int64_t in_tokens = std::max<int64_t>(0, f.est_input_tokens);
  std::optional<uint64_t> affine;
  if (route.affinity && f.prefix_hash != 0) affine = affinity_.get(f.prefix_hash, now);
  const int64_t cached_guess =
      f.prefix_tokens > 0 ? std::min(f.prefix_tokens, in_tokens) : in_tokens / 2;

  d.evals.resize(cands->size());
  for (size_t i = 0; i < cands->size(); ++i) {
    const RouteCandidate& rc = (*cands)[i];
    const DeploymentFacts& df = p.deployments[rc.deployment];
    CandidateEval& e = d.evals[i];
    e.reset(rc.deployment, static_cast<uint32_t>(i), rc.fallback);
    auto exclude = [&](ExclusionKind k, std::string why) {
      e.excluded = true;
      e.kind = k;
      e.reason = std::move(why);
    };
    // The kill switch comes first: no other reason may hide it.
    const Suspension* sus = snap.suspended->empty() ? nullptr : find_suspension(*snap.suspended, df);
    if (!sus && what_if) sus = find_suspension(*what_if, df);
    if (sus) {
      exclude(ExclusionKind::suspended, suspension_reason(*sus));
      continue;
    }
    if (!origin.empty()) {
      exclude(ExclusionKind::policy, origin);
      continue;
    }
    if (!rc.static_exclusion.empty()) {
      e.excluded = true;
      e.kind = rc.static_kind;
      e.reason = rc.static_exclusion;
      continue;
    }
    if (!df.caps.covers(need)) {
      exclude(ExclusionKind::request, "lacks " + df.caps.missing(need) + " needed by the request");
      continue;
    }
    if (c.context_fit && !f.needs_embeddings) {
      const int64_t out_need = f.max_tokens.value_or(0);
      if (f.max_tokens && df.max_output > 0 && *f.max_tokens > df.max_output) {
        exclude(ExclusionKind::request,
                "max_tokens " + std::to_string(*f.max_tokens) + " exceeds max output " + std::to_string(df.max_output));
        continue;
      }
      if (df.context_window > 0 && in_tokens + out_need > df.context_window) {
        exclude(ExclusionKind::request, "context: " + std::to_string(in_tokens) + " input + " + std::to_string(out_need) +
                                            " output tokens exceed context window " + std::to_string(df.context_window));
        continue;
      }
    }
    if (tenant_only_presets) {
      std::string why = preset_exclusion(df, tenant_only_presets);
      if (!why.empty()) {
        exclude(ExclusionKind::policy, "tenant preset " + why);
        continue;
      }
    }
    if (dyn_presets) {
      std::string why = request_exclusion(df, presets, ctx);
      if (!why.empty()) {
        exclude(ExclusionKind::policy, std::move(why));
        continue;
      }
    }
    // After the policy's reasons, so that explain names a compliance exclusion whatever the model kind.
    if (df.caps.embeddings != f.needs_embeddings) {
      exclude(ExclusionKind::request, df.caps.embeddings ? "an embedding model: it serves /v1/embeddings only"
                                                         : "not an embedding model: it cannot serve /v1/embeddings");
      continue;
    }
    DeploymentStats& st = *snap.stats[rc.deployment];
    const AvailabilityCheck av = st.availability(now);
    if (av.state == Availability::cooldown || av.state == Availability::open) {
      exclude(ExclusionKind::unavailable,
              std::string(av.state == Availability::open ? "circuit open, half-open in " : "cooling down (") +
                  (av.state == Availability::open ? fmt(static_cast<double>(av.wait_ms) / 1000.0, "%.1f") + " s"
                                                  : std::string(av.cause) + ", " +
                                                        fmt(static_cast<double>(av.wait_ms) / 1000.0, "%.1f") + " s left)"));
      continue;
    }
    if (av.state == Availability::probe_busy) {
      exclude(ExclusionKind::unavailable, "circuit half-open, probe in flight");
      continue;
    }
    e.probe = av.state == Availability::probe;

    const LiveView v = st.view(now);
    e.external = v.external;
    if (df.concurrency_limit > 0 && v.in_flight >= df.concurrency_limit) {
      exclude(ExclusionKind::unavailable, "at concurrency limit (" + std::to_string(v.in_flight) + " in flight)");
      continue;
    }
    e.est_output_tokens = f.max_tokens ? *f.max_tokens : std::max<int64_t>(1, std::llround(v.avg_output_tokens));
    e.affinity = affine && *affine == snap.key[rc.deployment];
    e.est_cached_tokens = e.affinity ? cached_guess : 0;
    e.price_factor = price_factor(df.pricing.schedule, wall);
    core::Usage u;
    u.prompt_tokens = in_tokens;
    u.cached_tokens = e.est_cached_tokens;
    u.completion_tokens = e.est_output_tokens;
    e.est_cost_usd = cost_of(df.pricing, u, e.price_factor).usd();
    e.ttft_ms = v.ttft_ms;
    e.tokens_per_second = v.tokens_per_second;
    e.latency_ms = v.ttft_ms + static_cast<double>(e.est_output_tokens) / v.tokens_per_second * 1000.0;
    e.error_rate = v.error_rate;
    if (c.max_cost_usd && e.est_cost_usd > *c.max_cost_usd) {
      exclude(ExclusionKind::policy, "expected cost $" + fmt(e.est_cost_usd) + " above max_cost_usd $" + fmt(*c.max_cost_usd));
      continue;
    }
    if (f.budget_remaining_usd && e.est_cost_usd > *f.budget_remaining_usd) {
      exclude(ExclusionKind::policy, "expected cost $" + fmt(e.est_cost_usd) + " above tenant budget left $" +
                                         fmt(*f.budget_remaining_usd));
      continue;
    }
  }

  // Objective over the qualified candidates.
  const Objective& o = route.objective;
  double max_cost = 0, max_lat = 0;
  for (const auto& e : d.evals)
    if (!e.excluded) {
      max_cost = std::max(max_cost, e.est_cost_usd);
      max_lat = std::max(max_lat, e.latency_ms);
    }
  for (uint32_t i = 0; i < d.evals.size(); ++i) {
    CandidateEval& e = d.evals[i];
    if (e.excluded) continue;
    const double cn = max_cost > 0 ? e.est_cost_usd / max_cost : 0;
    const double ln = max_lat > 0 ? e.latency_ms / max_lat : 0;
    switch (o.kind) {
      case ObjectiveKind::weighted:
        e.cost_term = o.cost_weight * cn;
        e.latency_term = o.latency_weight * ln;
        e.error_term = o.error_weight * e.error_rate;
        e.score = e.cost_term + e.latency_term + e.error_term;
        break;
      case ObjectiveKind::cheapest_within_slo:
        e.meets_slo = (!o.latency_slo_ms || e.latency_ms <= *o.latency_slo_ms) && (!o.ttft_slo_ms || e.ttft_ms <= *o.ttft_slo_ms);
        if (!e.meets_slo && o.strict_slo) {
          e.excluded = true;
          e.kind = ExclusionKind::unavailable;
          e.reason = "expected latency " + fmt(e.latency_ms, "%.0f") + " ms / TTFT " + fmt(e.ttft_ms, "%.0f") +
                     " ms misses the SLO";
          continue;
        }
        // Lexicographic: every SLO-meeting candidate (ranked by cost, then error risk) before any
        // that misses it (ranked by latency).
        e.cost_term = cn;
        e.latency_term = e.meets_slo ? 0 : 2 + ln;
        e.error_term = e.meets_slo ? e.error_rate * 1e-3 : 0;
        e.score = e.meets_slo ? cn + e.error_term : e.latency_term;
        break;
      case ObjectiveKind::ordered:
        e.score = static_cast<double>(e.order);
        break;
    }
    d.ranked.push_back(i);
  }
  auto better = [&](uint32_t a, uint32_t b) {
    const CandidateEval& x = d.evals[a];
    const CandidateEval& y = d.evals[b];
    if (x.fallback != y.fallback) return y.fallback;
    if (x.score != y.score) return x.score < y.score;
    if (x.order != y.order) return x.order < y.order;
    return p.deployments[x.deployment].deployment.id < p.deployments[y.deployment].deployment.id;
  };
  const size_t top = static_cast<size_t>(route.max_attempts);
  // Diversification may bring any qualified candidate forward: it needs the whole order.
  if (full_rank || d.ranked.size() <= top || route.diversify.any())
    std::sort(d.ranked.begin(), d.ranked.end(), better);
  else
    std::partial_sort(d.ranked.begin(), d.ranked.begin() + static_cast<std::ptrdiff_t>(top), d.ranked.end(), better);

  if (route.diversify.any()) diversify_order(route, d);

  if (d.ranked.empty()) {
    // Fail closed, naming every candidate's reason.
    bool any_unavailable = false, all_request = true, any_context = false, all_suspended = true;
    int64_t retry_ms = std::numeric_limits<int64_t>::max();
    for (const auto& e : d.evals) {
      any_unavailable |= e.kind == ExclusionKind::unavailable || e.kind == ExclusionKind::suspended;
      all_suspended &= e.kind == ExclusionKind::suspended;
      all_request &= e.kind == ExclusionKind::request;
      any_context |= e.reason.rfind("context", 0) == 0 || e.reason.rfind("max_tokens", 0) == 0;
    }
    // Every candidate cooling down after 429s: the refusal is a 429 too, with the shortest wait.
    bool all_rate_limited = !cands->empty();
    for (const auto& rc : *cands) {
      const auto av = snap.stats[rc.deployment]->availability(now);
      if (av.state == Availability::cooldown || av.state == Availability::open) retry_ms = std::min(retry_ms, av.wait_ms);
      all_rate_limited &= av.state == Availability::cooldown && std::string_view(av.cause).rfind("rate limited", 0) == 0;
    }
    core::ErrorKind kind = any_unavailable && all_rate_limited ? core::ErrorKind::rate_limited
                           : any_unavailable ? core::ErrorKind::unavailable
                           : all_request   ? (any_context ? core::ErrorKind::context_too_long : core::ErrorKind::bad_request)
                                           : core::ErrorKind::forbidden;
    std::string msg = "no deployment satisfies route '" + route.name + "' of policy '" + p.name + "': ";
    size_t listed = 0;
    for (const auto& e : d.evals) {
      if (listed == options_.max_reasons_in_error) {
        msg += "; ... and " + std::to_string(d.evals.size() - listed) + " more (see /admin/explain)";
        break;
      }
      if (listed++) msg += "; ";
      msg += p.deployments[e.deployment].deployment.id + " excluded: " + e.reason;
    }
    if (all_suspended) kind = core::ErrorKind::unavailable;
    if (all_suspended) msg = "every candidate of route '" + route.name + "' is suspended: " + msg.substr(msg.find(": ") + 2);
    core::Error err = core::make_error(kind, std::move(msg), core::ErrorSource::gateway,
                                       all_suspended ? "deployment_suspended" : "routing_refused");
    if ((kind == core::ErrorKind::unavailable || kind == core::ErrorKind::rate_limited) &&
        retry_ms != std::numeric_limits<int64_t>::max() && !all_suspended)
      err.retry_after = std::chrono::milliseconds(std::max<int64_t>(retry_ms, 1));
    // A policy refusal stays one until an operator changes the policy; so does a route whose every
    // candidate lacks its provider or API key.
    bool all_unconfigured = !d.evals.empty();
    for (const auto& e : d.evals)
      all_unconfigured &= e.kind == ExclusionKind::suspended ||
                          (e.kind == ExclusionKind::unavailable &&
                           (e.reason.rfind("no API key", 0) == 0 || e.reason.find("not configured") != std::string::npos));
    err.permanent = kind == core::ErrorKind::forbidden || all_unconfigured;
    d.error = std::move(err);
  }
}

void PolicyRouter::diversify_order(const Route& route, Decision& d) const {
  const DiversifySettings& s = route.diversify;
  std::optional<ShareTotals> shares;
  if (!s.caps.empty()) shares = diversity_->window(route.name, s.window)->totals(options_.clock->steady_now());
  RandomSource& random = options_.random ? *options_.random : thread_random();
  diversify(s, shares ? &*shares : nullptr, *d.policy, d.evals, d.ranked, random, d.diversify);
}

void PolicyRouter::served(const Plan& plan, const std::string& deployment_id, double cost_usd) {
  auto p = plan.snapshot ? std::static_pointer_cast<const CompiledPolicy>(plan.snapshot) : policy();
  if (!p) return;
  const DeploymentFacts* facts = p->find(deployment_id);
  if (!facts) return;
  for (const auto& r : p->routes)
    if (r.name == plan.route) {
      if (!r.diversify.caps.empty()) diversity_->served(r.name, r.diversify.window, *facts, cost_usd);
      return;
    }
}

Decision PolicyRouter::decide(const RequestFeatures& request, const SuspensionList* what_if) const {
  Decision d;
  auto snap = snapshot_.load();
  evaluate(*snap, request, d, true, what_if);
  return d;
}

core::Result<Plan> PolicyRouter::plan(const RequestFeatures& request) const {
  auto snap = snapshot_.load();
  // Per-thread scratch: candidate buffers keep their capacity between decisions.
  thread_local Decision d;
  evaluate(*snap, request, d, false);
  if (!snap->suspended->empty()) count_suspension_exclusions(*snap, d);
  if (d.error) {
    d.policy.reset();
    return *d.error;
  }
  const CompiledPolicy& p = *snap->policy;
  const Route& route = *d.route;
  Plan plan;
  plan.route = route.name;
  plan.snapshot = snap->policy;
  const size_t limit = static_cast<size_t>(route.max_attempts);
  plan.attempts.reserve(std::min(limit, d.ranked.size()));
  bool probing = false;
  for (uint32_t idx : d.ranked) {
    CandidateEval& e = d.evals[idx];
    if (e.probe) {
      // Half-open: one request at a time may probe. The probe goes first, so it really is tried;
      // the rest of the plan still backs it up.
      if (probing || !snap->stats[e.deployment]->try_acquire_probe(options_.clock->steady_now())) {
        e.excluded = true;
        e.kind = ExclusionKind::unavailable;
        e.reason = "circuit half-open, probe in flight";
        continue;
      }
      probing = true;
      PlannedAttempt a{p.deployments[e.deployment].deployment, e.est_cost_usd, e.score,
                       p.deployments[e.deployment].max_usage_tokens(), p.deployments[e.deployment].context_window};
      plan.attempts.insert(plan.attempts.begin(), std::move(a));
      if (plan.attempts.size() > limit) plan.attempts.pop_back();
      continue;
    }
    if (plan.attempts.size() >= limit) continue;
    plan.attempts.push_back({p.deployments[e.deployment].deployment, e.est_cost_usd, e.score,
                             p.deployments[e.deployment].max_usage_tokens(), p.deployments[e.deployment].context_window});
  }
  for (const auto& e : d.evals)
    if (e.excluded) plan.exclusions.push_back({p.deployments[e.deployment].deployment.id, e.reason});
  if (!d.diversify.canary_to.empty() && !plan.attempts.empty() && plan.attempts[0].deployment.id == d.diversify.canary_to)
    diversity_->canary_sent(route.name, d.diversify.canary_to);
  if (plan.attempts.empty()) {
    std::string msg = "no deployment available for route '" + route.name + "': ";
    for (size_t i = 0; i < plan.exclusions.size() && i < options_.max_reasons_in_error; ++i)
      msg += (i ? "; " : "") + plan.exclusions[i].deployment + " excluded: " + plan.exclusions[i].reason;
    d.policy.reset();
    return core::make_error(core::ErrorKind::unavailable, std::move(msg), core::ErrorSource::gateway, "routing_refused");
  }
  d.policy.reset();  // do not pin an old policy in the scratch buffer
  return plan;
}

std::string PolicyRouter::explain_json(const RequestFeatures& f, const SuspensionList* what_if) const {
  Decision d = decide(f, what_if);
  const CompiledPolicy& p = *d.policy;
  std::string o;
  o.reserve(4096);
  auto key = [&](const char* k) {
    core::append_json_string(o, k);
    o += ':';
  };
  auto str_field = [&](const char* k, std::string_view v) {
    key(k);
    core::append_json_string(o, v);
    o += ',';
  };
  auto num_field = [&](const char* k, double v) {
    key(k);
    json_num(o, v);
    o += ',';
  };
  o += '{';
  // {"cost":..,"latency":..,"error_risk":..}, as both the route's weights and each candidate's terms.
  auto cost_latency_error = [&](const char* name, double cost, double latency, double error) {
    key(name);
    o += '{';
    key("cost");
    json_num(o, cost);
    o += ',';
    key("latency");
    json_num(o, latency);
    o += ',';
    key("error_risk");
    json_num(o, error);
    o += "},";
  };
  str_field("policy", p.name);
  str_field("file", p.file);
  str_field("route", d.route ? d.route->name : "");
  if (d.route) {
    num_field("route_line", d.route->line);
    str_field("objective", to_string(d.route->objective.kind));
    const Objective& ob = d.route->objective;
    cost_latency_error("weights", ob.cost_weight, ob.latency_weight, ob.error_weight);
    if (ob.latency_slo_ms) num_field("latency_slo_ms", *ob.latency_slo_ms);
    if (ob.ttft_slo_ms) num_field("ttft_slo_ms", *ob.ttft_slo_ms);
    num_field("max_attempts", d.route->max_attempts);
    // Where the savings figures of this route's traffic are measured from ("price" or a deployment).
    if (d.route->baseline) str_field("baseline", d.route->baseline_source);
    if (d.route->diversify.any()) {
      append_diversify_json(o, d.route->diversify, d.diversify);
      o += ',';
    }
  }
  key("request");
  o += '{';
  str_field("model", f.model);
  // A vendor's legacy model ID: say which current model it names, so the operator sees why.
  for (const auto& dep : p.deployments)
    if (dep.deployment.model == f.model && !dep.alias_of.empty()) {
      str_field("alias_of", dep.alias_of);
      break;
    }
  str_field("tenant", f.tenant);
  str_field("path", f.path);
  str_field("client_country", d.client_country);
  str_field("client_subdivision", d.client_subdivision);
  if (!d.other_client_regions.empty()) {
    key("other_client_regions");
    o += '[';
    for (size_t i = 0; i < d.other_client_regions.size(); ++i) {
      if (i) o += ',';
      core::append_json_string(o, d.other_client_regions[i].text());
    }
    o += "],";
  }
  str_field("data_classification", d.data_classification);
  key("data_tags");
  o += '[';
  for (size_t i = 0; i < d.data_tags.size(); ++i) {
    if (i) o += ',';
    core::append_json_string(o, d.data_tags[i]);
  }
  o += "],";
  num_field("est_input_tokens", static_cast<double>(f.est_input_tokens));
  if (f.max_tokens) num_field("max_tokens", static_cast<double>(*f.max_tokens));
  key("needs");
  Capabilities need{f.needs_tools, f.needs_json, f.needs_vision, f.needs_reasoning, f.needs_embeddings};
  core::append_json_string(o, need.to_string());
  o += ',';
  str_field("reasoning_effort", f.reasoning_effort.empty() ? "unset" : f.reasoning_effort);
  if (d.content) {
    append_content_json(o, *d.content);
    o += ',';
  }
  o.back() = '}';
  o += ',';
  append_match_json(o, p, f, d);
  o += ',';
  key("plan");
  o += '[';
  const size_t limit = d.route ? static_cast<size_t>(d.route->max_attempts) : 0;
  for (size_t i = 0; i < d.ranked.size() && i < limit; ++i) {
    if (i) o += ',';
    core::append_json_string(o, p.deployments[d.evals[d.ranked[i]].deployment].deployment.id);
  }
  o += "],";
  std::vector<int> rank(d.evals.size(), 0);
  for (size_t i = 0; i < d.ranked.size(); ++i) rank[d.ranked[i]] = static_cast<int>(i) + 1;
  key("candidates");
  o += '[';
  for (size_t i = 0; i < d.evals.size(); ++i) {
    const CandidateEval& e = d.evals[i];
    const DeploymentFacts& df = p.deployments[e.deployment];
    if (i) o += ',';
    o += '{';
    str_field("deployment", df.deployment.id);
    if (e.excluded) {
      str_field("status", "excluded");
      str_field("exclusion", kind_name(e.kind));
      str_field("reason", e.reason);
    } else {
      str_field("status", static_cast<size_t>(rank[i]) <= limit ? (rank[i] == 1 ? "primary" : "fallback") : "qualified");
      num_field("rank", rank[i]);
      num_field("score", e.score);
      cost_latency_error("terms", e.cost_term, e.latency_term, e.error_term);
      num_field("est_cost_usd", e.est_cost_usd);
      num_field("est_output_tokens", static_cast<double>(e.est_output_tokens));
      num_field("est_cached_tokens", static_cast<double>(e.est_cached_tokens));
      num_field("price_factor", e.price_factor);
      num_field("ttft_ms", e.ttft_ms);
      num_field("tokens_per_second", e.tokens_per_second);
      num_field("expected_latency_ms", e.latency_ms);
      num_field("error_rate", e.error_rate);
      key("meets_slo");
      o += e.meets_slo ? "true," : "false,";
      key("affinity");
      o += e.affinity ? "true," : "false,";
      key("fallback_only");
      o += e.fallback ? "true," : "false,";
      key("half_open_probe");
      o += e.probe ? "true," : "false,";
      key("external_stats");
      o += e.external ? "true," : "false,";
    }
    str_field("jurisdiction", df.risk.jurisdiction);
    str_field("sanctions_risk", to_string(df.risk.sanctions_risk()));
    key("verified_at");
    core::append_json_string(o, df.risk.verified_at);
    o += '}';
  }
  o += ']';
  if (d.error) {
    o += ',';
    key("error");
    o += '{';
    str_field("kind", core::to_string(d.error->kind));
    num_field("status", d.error->http_status());
    key("message");
    core::append_json_string(o, d.error->message);
    o += '}';
  }
  o += '}';
  return o;
}

std::optional<core::Money> PolicyRouter::cost(const Plan& plan, const std::string& deployment_id,
                                               const core::Usage& usage, core::WallTime when) const {
  auto p = plan.snapshot ? std::static_pointer_cast<const CompiledPolicy>(plan.snapshot) : policy();
  const DeploymentFacts* facts = p ? p->find(deployment_id) : nullptr;
  if (!facts) return std::nullopt;
  return cost_of(*facts, usage, when);
}

std::optional<core::Money> PolicyRouter::baseline_cost(const Plan& plan, const core::Usage& usage) const {
  auto p = plan.snapshot ? std::static_pointer_cast<const CompiledPolicy>(plan.snapshot) : policy();
  if (!p) return std::nullopt;
  for (const auto& r : p->routes) {
    if (r.name != plan.route) continue;
    if (!r.baseline) return std::nullopt;
    return routing::baseline_cost(*r.baseline, usage);
  }
  return std::nullopt;
}

}  // namespace routing
