#pragma once
// Builds the upstream JSON body from the client's: every field the client sent passes through
// unchanged (so new vendor parameters work without a gateway release), except `model` (the
// deployment's model id) and, for streams, stream_options.include_usage (always on upstream, so
// streamed usage is never lost; the gateway strips it again if the client did not ask).
#include <string>
#include <string_view>

#include "core/result.h"

namespace providers {

core::Result<std::string> build_upstream_body(std::string_view client_body, std::string_view upstream_model,
                                              bool stream);

}  // namespace providers
