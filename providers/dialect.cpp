#include "providers/dialect.h"

namespace providers {

// Facts from each vendor's API documentation (compiled 2026-11-23; Responses API endpoints 2026-12-03).
const std::vector<Dialect>& all_dialects() {
  static const std::vector<Dialect> table = {
      // Anthropic endpoint [V]; its guide configures ANTHROPIC_API_KEY, i.e. the x-api-key header. The
      // Responses API is listed as supported [V], on the same base as chat completions.
      {"deepseek", "global",
       {{"global", "https://api.deepseek.com", "CN", "https://api.deepseek.com/anthropic", true}},
       "DEEPSEEK_API_KEY", AuthScheme::bearer, true, false, true, AnthropicAuth::x_api_key},
      // Responses API at /compatible-mode/v1/responses [V], i.e. on every compatible-mode base.
      // Anthropic endpoint: "same host + /apps/anthropic" [V]; the reference spells the URL out for
      // Beijing only, the other shared hosts follow that rule.
      {"qwen", "ap-southeast-1",
       {{"cn-beijing", "https://dashscope.aliyuncs.com/compatible-mode/v1", "CN",
         "https://dashscope.aliyuncs.com/apps/anthropic", true},
        {"ap-southeast-1", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "global_ex_CN",
         "https://dashscope-intl.aliyuncs.com/apps/anthropic", true},
        {"us-east-1", "https://dashscope-us.aliyuncs.com/compatible-mode/v1", "US",
         "https://dashscope-us.aliyuncs.com/apps/anthropic", true},
        {"cn-hongkong", "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1", "HK",
         "https://cn-hongkong.dashscope.aliyuncs.com/apps/anthropic", true},
        // Global scope workspaces use the Virginia domain and may run inference anywhere, China included.
        {"global", "https://dashscope-us.aliyuncs.com/compatible-mode/v1", "global",
         "https://dashscope-us.aliyuncs.com/apps/anthropic", true},
        // Frankfurt (EU scope) and Tokyo have only workspace-dedicated hosts
        // (https://{WorkspaceId}.{region}.maas.aliyuncs.com/compatible-mode/v1): no shared URL, so the
        // operator names theirs in `base_urls`.
        {"eu-central-1", "", "EU", "", true},
        {"ap-northeast-1", "", "unknown", "", true}},
       // Embeddings: text-embedding-v4 on compatible-mode /embeddings, 10 rows per request [V].
       "DASHSCOPE_API_KEY", AuthScheme::bearer, true, false, false, AnthropicAuth::bearer, 10},
      // Anthropic endpoint: intl [S]; a .cn equivalent is unverified [U], so none is assumed
      // (an operator who has one names it in anthropic_base_urls). `/responses` is listed by a
      // secondary source only [S]: off unless the provider's config says `responses: true`.
      {"kimi", "intl",
       {{"intl", "https://api.moonshot.ai/v1", "unknown", "https://api.moonshot.ai/anthropic"},
        {"cn", "https://api.moonshot.cn/v1", "CN"}},
       "MOONSHOT_API_KEY", AuthScheme::bearer, true, true, false},
      // Anthropic endpoints [V] for the pay-as-you-go regions. Which endpoint a Coding Plan key
      // must use for Anthropic requests the reference does not say [U]: none is assumed. The
      // Responses API exists only for the international Coding Plan, on a base of its own,
      // https://api.z.ai/api/v1 [V], with the same key and Bearer auth as the chat base [V]; no
      // bigmodel.cn equivalent is documented [U].
      {"glm", "intl",
       {{"intl", "https://api.z.ai/api/paas/v4", "SG", "https://api.z.ai/api/anthropic"},
        {"intl-coding", "https://api.z.ai/api/coding/paas/v4", "SG", "", false, "https://api.z.ai/api/v1"},
        {"cn", "https://open.bigmodel.cn/api/paas/v4", "CN", "https://open.bigmodel.cn/api/anthropic"},
        {"cn-coding", "https://open.bigmodel.cn/api/coding/paas/v4", "CN"}},
       // Embeddings: embedding-3 on bigmodel's /embeddings [V]; its row limit per request is not in the
       // reference: 64 assumed [U] (a smaller real limit shows as the vendor's 400 on large batches).
       "ZAI_API_KEY", AuthScheme::bearer, true, false, false, AnthropicAuth::bearer, 64},
      // MiniMax: OpenAI-compatible chat at /v1 [S]. The reference documents neither its usage nor its
      // error shape; it is treated as the generic OpenAI-compatible dialect (top-level usage, reasoning in
      // reasoning_content, OpenAI-shaped errors). The China host's /v1 path is assumed by analogy [U].
      // Anthropic endpoint: intl [S] (models.dev's preferred route); none assumed for China [U].
      {"minimax", "intl",
       {{"intl", "https://api.minimax.io/v1", "US", "https://api.minimax.io/anthropic"},
        {"cn", "https://api.minimaxi.com/v1", "CN"}},
       "MINIMAX_API_KEY", AuthScheme::bearer, true, false, false},
      // Any self-hosted OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama): base_url from
      // config; an Anthropic endpoint only when configured (anthropic_base_url), keyed as Anthropic's own
      // API is (x-api-key).
      // Embeddings: OpenAI's own limit of 2,048 rows per request, which the common servers accept.
      {"openai_compatible", "default", {}, "", AuthScheme::bearer, false, false, false, AnthropicAuth::x_api_key, 2048},
      {"local", "local", {{"local", "", "self"}}, "", AuthScheme::none, false, false, false},
  };
  return table;
}

const Dialect* find_dialect(std::string_view name) {
  for (const auto& d : all_dialects())
    if (d.name == name) return &d;
  return nullptr;
}

}  // namespace providers
