#include "providers/provider.h"

namespace providers {

core::Task<AttemptResult> Provider::anthropic_messages(const AttemptContext& ctx, EventSink* sink) {
  (void)sink;
  AttemptResult r;
  r.error = core::make_error(core::ErrorKind::internal,
                             "provider '" + name() + "' has no Anthropic Messages endpoint for region '" +
                                 ctx.target.region + "'",
                             core::ErrorSource::gateway, "no_native_endpoint");
  co_return r;
}

core::Task<AttemptResult> Provider::embeddings(const AttemptContext& ctx) {
  (void)ctx;
  AttemptResult r;
  r.error = core::make_error(core::ErrorKind::unavailable, "provider '" + name() + "' serves no embeddings",
                             core::ErrorSource::gateway, "no_embeddings_api");
  co_return r;
}

core::Task<AttemptResult> Provider::openai_responses(const AttemptContext& ctx, EventSink* sink) {
  (void)sink;
  AttemptResult r;
  r.error = core::make_error(core::ErrorKind::internal,
                             "provider '" + name() + "' has no Responses endpoint for region '" + ctx.target.region + "'",
                             core::ErrorSource::gateway, "no_native_endpoint");
  co_return r;
}

}  // namespace providers
