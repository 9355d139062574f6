// One routing decision (PolicyRouter::plan) over 10, 100 and 1000 candidate deployments.
// Target (DESIGN.md): well under 10 us for 100.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "routing/content.h"
#include "routing/policy_router.h"

namespace {

using namespace routing;

// `n` deployments on a self-hosted fleet: 10 regions x n/10 models, prices varying by model,
// half of them in a region the route denies (so exclusions are exercised too when asked).
std::unique_ptr<PolicyRouter> make_router(int n, bool with_exclusions, const core::Clock* clock) {
  const int regions = 10, models = std::max(1, n / regions);
  ProviderInstance fleet{"fleet", "openai_compatible", {}, true, "", {}};
  for (int r = 0; r < regions; ++r) fleet.regions.push_back("r" + std::to_string(r));
  for (int m = 0; m < models; ++m) fleet.models.push_back("m" + std::to_string(m));
  std::string yaml = "catalog:\n";
  for (int r = 0; r < regions; ++r)
    yaml += "  - {ref: \"fleet@r" + std::to_string(r) + "/*\", jurisdiction: self, inference_countries: [" +
            (r % 2 ? "US" : "DE") + "], capabilities: [tools, json]}\n";
  for (int m = 0; m < models; ++m)
    yaml += "  - {ref: \"fleet@*/m" + std::to_string(m) + "\", price: {input: " + std::to_string(0.05 + 0.01 * m) +
            ", output: " + std::to_string(0.4 + 0.02 * (m % 7)) + "}}\n";
  yaml += "routes:\n  - name: bench\n    match: {model: auto}\n    candidates: [\"fleet/*\"]\n";
  if (with_exclusions) yaml += "    constraints: {denied_inference_regions: [US]}\n";
  std::vector<ProviderInstance> providers{fleet};
  auto compiled = compile_policy(yaml, "bench.yaml", *builtin_catalog(), providers);
  if (!compiled.ok()) {
    fprintf(stderr, "%s\n", compiled.error().message.c_str());
    std::abort();
  }
  PolicyRouterOptions opt;
  opt.clock = clock;
  auto router = std::make_unique<PolicyRouter>(compiled.value(), opt);
  // Give every deployment live figures.
  for (const auto& d : compiled.value()->deployments) {
    AttemptOutcome o;
    o.deployment = d.deployment.id;
    o.ok = true;
    o.ttft = std::chrono::milliseconds(200 + static_cast<int>(d.deployment.id.size()) * 7 % 300);
    o.duration = o.ttft + std::chrono::milliseconds(800);
    o.output_tokens = 120;
    router->record(o);
  }
  return router;
}

RequestFeatures bench_request() {
  RequestFeatures f;
  f.model = "auto";
  f.est_input_tokens = 1500;
  f.max_tokens = 300;
  f.needs_tools = true;
  f.client_region = "US";
  f.prefix_hash = 0x1234567;
  return f;
}

void BM_Plan(benchmark::State& state) {
  const core::SystemClock& clock = core::SystemClock::instance();
  auto router = make_router(static_cast<int>(state.range(0)), state.range(1) != 0, &clock);
  const RequestFeatures f = bench_request();
  for (auto _ : state) {
    auto plan = router->plan(f);
    benchmark::DoNotOptimize(plan);
  }
  state.SetLabel(state.range(1) ? "half excluded" : "all qualify");
}
BENCHMARK(BM_Plan)->ArgsProduct({{10, 100, 1000}, {0, 1}})->Unit(benchmark::kMicrosecond);

void BM_Explain(benchmark::State& state) {
  const core::SystemClock& clock = core::SystemClock::instance();
  auto router = make_router(static_cast<int>(state.range(0)), true, &clock);
  const RequestFeatures f = bench_request();
  for (auto _ : state) benchmark::DoNotOptimize(router->explain_json(f));
}
BENCHMARK(BM_Explain)->Arg(100)->Unit(benchmark::kMicrosecond);

void BM_CompileDefaultSized(benchmark::State& state) {
  for (auto _ : state) {
    const core::SystemClock& clock = core::SystemClock::instance();
    benchmark::DoNotOptimize(make_router(static_cast<int>(state.range(0)), true, &clock));
  }
}
BENCHMARK(BM_CompileDefaultSized)->Arg(100)->Unit(benchmark::kMillisecond);


// The content scan behind `match.script` / `match.code` over 64 KiB of prompt text (the scan's
// bound): English prose, Chinese prose and C++ source. Bytes/s is reported; ns/KiB = 1e12 / that.
void BM_ContentScan(benchmark::State& state) {
  const char* samples[] = {"The quick brown fox jumps over the lazy dog, again and again.\n",
                           "今天天气很好，我们去公园散步吧。\n",
                           "  for (int i = 0; i < n; ++i) { sum += v[i] * w[i]; }\n"};
  std::string text;
  while (text.size() < kContentScanBytes) text += samples[state.range(0)];
  text.resize(kContentScanBytes);
  std::vector<core::ChatMessage> msgs{{"user", text, "", "", ""}};
  for (auto _ : state) benchmark::DoNotOptimize(scan_messages(msgs));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
  state.SetLabel(state.range(0) == 0 ? "english" : state.range(0) == 1 ? "chinese" : "c++");
}
BENCHMARK(BM_ContentScan)->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
