#pragma once
// Shared helpers for routing tests.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/usage.h"
#include "routing/policy.h"
#include "routing/policy_router.h"

namespace routing::test {

inline std::vector<ProviderInstance> all_providers(bool keys = true, bool local = true) {
  std::vector<ProviderInstance> p{
      {"deepseek", "deepseek", {}, keys, "set DEEPSEEK_API_KEY", {}},
      {"qwen", "qwen", {}, keys, "set DASHSCOPE_API_KEY", {}},
      {"kimi", "kimi", {}, keys, "set MOONSHOT_API_KEY", {}},
      {"glm", "glm", {}, keys, "set ZAI_API_KEY", {}},
      {"minimax", "minimax", {}, keys, "set MINIMAX_API_KEY", {}},
  };
  if (local) p.push_back({"local", "local", {}, true, "", {}});
  return p;
}

// 2026-11-23 is a Monday. hh:mm UTC on that day plus `day_offset` days.
inline core::WallTime utc(int day_offset, int hh, int mm) {
  using namespace std::chrono;
  const sys_days monday = year{2026} / November / 23;
  return time_point_cast<system_clock::duration>(monday + days{day_offset} + hours{hh} + minutes{mm});
}

inline std::shared_ptr<const CompiledPolicy> must_compile(const std::string& yaml,
                                                          const std::vector<ProviderInstance>& providers = all_providers()) {
  auto r = compile_policy(yaml, "test.yaml", *builtin_catalog(), providers);
  if (!r.ok()) throw std::runtime_error("policy did not compile: " + r.error().message);
  return r.value();
}

inline RequestFeatures request(std::string model, int64_t input_tokens = 1000, std::optional<int64_t> max_tokens = 200) {
  RequestFeatures f;
  f.model = std::move(model);
  f.est_input_tokens = input_tokens;
  f.max_tokens = max_tokens;
  return f;
}

// A runtime suspension list holding one suspension of `target`, as the admin API would make it.
inline std::shared_ptr<const SuspensionList> one_suspension(SuspensionKind kind, std::string target,
                                                           std::string reason = "test") {
  auto list = std::make_shared<SuspensionList>();
  Suspension s;
  s.id = "s-1";
  s.selector = {kind, std::move(target)};
  s.reason = std::move(reason);
  s.since = "2026-12-02T10:00:00Z";
  s.by = "ops";
  list->push_back(std::move(s));
  return list;
}

// A built-in deployment by id (throws when the catalog lacks it).
inline const DeploymentFacts& facts(const std::string& id) {
  const DeploymentFacts* f = builtin_catalog()->find(id);
  if (!f) throw std::runtime_error("missing " + id);
  return *f;
}

// Usage with every token kind the pricing distinguishes.
inline core::Usage usage(int64_t prompt, int64_t cached, int64_t completion, int64_t reasoning = 0, int64_t write = 0) {
  core::Usage u;
  u.prompt_tokens = prompt;
  u.cached_tokens = cached;
  u.completion_tokens = completion;
  u.reasoning_tokens = reasoning;
  u.cache_write_tokens = write;
  return u;
}

}  // namespace routing::test
