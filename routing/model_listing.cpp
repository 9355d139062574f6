// PolicyRouter::model_listing: which API paths would serve each model name, for GET /v1/models.
// A name counts as served on a path when the decision for a plain request (no tools, no length)
// leaves at least one candidate that configuration does not rule out. Candidates held back by a
// passing state (an open circuit, a cooldown) still count: the list shows what the configuration
// serves, and does not flicker with an outage.
#include <string>

#include "routing/policy_router.h"

namespace routing {
namespace {

// The route candidate behind an evaluation of decision `d`.
const RouteCandidate* candidate_of(const Decision& d, const CandidateEval& e, const std::string& model) {
  const auto& lists = d.route->candidates;
  auto it = lists.find(d.route->per_model ? model : std::string());
  if (it == lists.end() || e.order >= it->second.size()) return nullptr;
  return &it->second[e.order];
}

// Ruled out by configuration: no key, provider not configured, suspended, or the caller's policy.
bool configured_out(const Decision& d, const CandidateEval& e, const std::string& model) {
  if (!e.excluded) return false;
  switch (e.kind) {
    case ExclusionKind::policy:
    case ExclusionKind::suspended:
      return true;
    case ExclusionKind::request:  // the plain request needs nothing: it is the wrong kind (embeddings, chat)
      return true;
    case ExclusionKind::unavailable: {
      const RouteCandidate* rc = candidate_of(d, e, model);
      return rc && !rc->static_exclusion.empty();
    }
  }
  return true;
}

// Empty when `d` serves `model`; else why not. A decision refused only because every candidate is
// passing through an outage still serves it.
std::string unavailable_reason(const Decision& d, const std::string& model) {
  if (!d.route || d.evals.empty()) return d.error ? d.error->message : "no route serves it";
  std::string first;
  for (const auto& e : d.evals) {
    if (!configured_out(d, e, model)) return {};
    if (first.empty()) first = e.reason;
  }
  return first.empty() ? "route '" + d.route->name + "' has no candidate" : first;
}

}  // namespace

std::vector<ModelListing> PolicyRouter::model_listing(const RequestFeatures& base,
                                                      std::span<const ListingPath> paths) const {
  std::vector<ModelListing> out;
  RequestFeatures f = base;
  for (auto& name : model_names()) {
    ModelListing m{std::move(name), {}, {}};
    f.model = m.name;
    bool reason_from_route = false;  // a path some route takes says more than "no route matches"
    for (const auto& path : paths) {
      f.path = path.path;
      f.needs_embeddings = path.embeddings;
      const Decision d = decide(f);
      std::string why = unavailable_reason(d, m.name);
      if (why.empty()) {
        m.paths.push_back(path.path);
      } else if (m.unavailable.empty() || (d.route && !reason_from_route)) {
        m.unavailable = std::move(why);
        reason_from_route = d.route != nullptr;
      }
    }
    if (!m.paths.empty()) m.unavailable.clear();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace routing
