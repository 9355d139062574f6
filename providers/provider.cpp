#include "providers/provider.h"

namespace providers {

core::Task<void> Provider::anthropic_messages(const AttemptContext& ctx, EventSink* sink, AttemptResult& r) {
  (void)sink;
  r.error = core::make_error(core::ErrorKind::internal,
                             "provider '" + name() + "' has no Anthropic Messages endpoint for region '" +
                                 ctx.target.region + "'",
                             core::ErrorSource::gateway, "no_native_endpoint");
  co_return;
}

core::Task<void> Provider::embeddings(const AttemptContext& ctx, AttemptResult& r) {
  (void)ctx;
  r.error = core::make_error(core::ErrorKind::unavailable, "provider '" + name() + "' serves no embeddings",
                             core::ErrorSource::gateway, "no_embeddings_api");
  co_return;
}

core::Task<void> Provider::openai_responses(const AttemptContext& ctx, EventSink* sink, AttemptResult& r) {
  (void)sink;
  r.error = core::make_error(core::ErrorKind::internal,
                             "provider '" + name() + "' has no Responses endpoint for region '" + ctx.target.region + "'",
                             core::ErrorSource::gateway, "no_native_endpoint");
  co_return;
}

}  // namespace providers
