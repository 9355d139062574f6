#pragma once
// Relays a native event stream (Anthropic Messages, OpenAI Responses) from an upstream exchange to the client's EventSink,
// with the semantics chat completions have (providers/openai_compatible.cpp): events before the
// first content are held so that a failure before content can still fail over; idle and total
// deadlines; usage, stop reason, ttft and an estimate of the output relayed; the final
// message_stop withheld for the gateway to send after accounting.
#include <chrono>

#include "core/task.h"
#include "providers/provider.h"

namespace providers {

struct Dialect;

core::Task<void> relay_anthropic_stream(const AttemptContext& ctx, const Dialect& dialect, UpstreamExchange& ex,
                                        EventSink& sink, std::chrono::steady_clock::time_point started,
                                        AttemptResult& res);
// The same for an OpenAI Responses event stream: the final response.completed (or .incomplete) is
// withheld, its data left in res.body for the gateway to send with its own ids after accounting.
core::Task<void> relay_responses_stream(const AttemptContext& ctx, const Dialect& dialect, UpstreamExchange& ex,
                                        EventSink& sink, std::chrono::steady_clock::time_point started,
                                        AttemptResult& res);

}  // namespace providers
