#include "providers/dialect.h"

namespace providers {

// Facts from each vendor's API documentation (compiled 2026-11-23).
const std::vector<Dialect>& all_dialects() {
  static const std::vector<Dialect> table = {
      {"deepseek", "global",
       {{"global", "https://api.deepseek.com", "CN"}},
       "DEEPSEEK_API_KEY", AuthScheme::bearer, true, false, true},
      {"qwen", "ap-southeast-1",
       {{"cn-beijing", "https://dashscope.aliyuncs.com/compatible-mode/v1", "CN"},
        {"ap-southeast-1", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "global_ex_CN"},
        {"us-east-1", "https://dashscope-us.aliyuncs.com/compatible-mode/v1", "US"},
        {"cn-hongkong", "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1", "HK"},
        // Global scope workspaces use the Virginia domain and may run inference anywhere, China included.
        {"global", "https://dashscope-us.aliyuncs.com/compatible-mode/v1", "global"},
        // Frankfurt (EU scope) and Tokyo have only workspace-dedicated hosts
        // (https://{WorkspaceId}.{region}.maas.aliyuncs.com/compatible-mode/v1): no shared URL, so the
        // operator names theirs in `base_urls`.
        {"eu-central-1", "", "EU"},
        {"ap-northeast-1", "", "unknown"}},
       "DASHSCOPE_API_KEY", AuthScheme::bearer, true, false, false},
      {"kimi", "intl",
       {{"intl", "https://api.moonshot.ai/v1", "unknown"}, {"cn", "https://api.moonshot.cn/v1", "CN"}},
       "MOONSHOT_API_KEY", AuthScheme::bearer, true, true, false},
      {"glm", "intl",
       {{"intl", "https://api.z.ai/api/paas/v4", "SG"},
        {"intl-coding", "https://api.z.ai/api/coding/paas/v4", "SG"},
        {"cn", "https://open.bigmodel.cn/api/paas/v4", "CN"},
        {"cn-coding", "https://open.bigmodel.cn/api/coding/paas/v4", "CN"}},
       "ZAI_API_KEY", AuthScheme::bearer, true, false, false},
      // MiniMax: OpenAI-compatible chat at /v1 [S]. The reference documents neither its usage nor its
      // error shape; it is treated as the generic OpenAI-compatible dialect (top-level usage, reasoning in
      // reasoning_content, OpenAI-shaped errors). The China host's /v1 path is assumed by analogy [U].
      {"minimax", "intl",
       {{"intl", "https://api.minimax.io/v1", "US"}, {"cn", "https://api.minimaxi.com/v1", "CN"}},
       "MINIMAX_API_KEY", AuthScheme::bearer, true, false, false},
      // Any self-hosted OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama): base_url from config.
      {"openai_compatible", "default", {}, "", AuthScheme::bearer, false, false, false},
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
