#pragma once
// POST /v1/embeddings: the client's body into the core request (input rows, dimensions, encoding)
// and the providers' re-assembled answer into the OpenAI embeddings list the client asked for.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/chat.h"
#include "core/result.h"

namespace gateway {

// Bounds of one request (OpenAI's own: 2,048 inputs, 300,000 tokens over all of them).
inline constexpr size_t kMaxEmbeddingRows = 2048;
inline constexpr int64_t kMaxEmbeddingTokens = 300000;
inline constexpr int64_t kMaxEmbeddingDimensions = 65536;

// The request, or the client's error (400; 413 when the inputs exceed kMaxEmbeddingTokens). The
// result has `embedding` set, no messages, stream false and max_tokens 0. `input` is a string, an
// array of strings, an array of token ids or an array of token-id arrays; empty inputs, unknown
// members, repeated member names and wrong types are refused by name.
core::Result<core::ChatRequest> parse_embeddings_request(std::string body);

// The answer the client gets: `upstream` (providers::embeddings_answer's list, float vectors) with
// `model` set to `model` (empty: the upstream model the deployment named) and, with `base64`, each vector as base64 of its
// little-endian float32 values (as OpenAI encodes them).
core::Result<std::string> embeddings_client_answer(std::string_view upstream, std::string_view model, bool base64);

// Base64 (RFC 4648, padded) of the little-endian float32 form of `values`.
std::string float32_base64(const double* values, size_t n);

}  // namespace gateway
