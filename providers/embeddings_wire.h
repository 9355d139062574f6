#pragma once
// The OpenAI /embeddings wire format as the OpenAI-compatible vendors speak it (Qwen DashScope
// compatible-mode, GLM bigmodel, self-hosted servers): the body of one sub-batch, the answer of one
// sub-batch, and the whole answer re-assembled in input order. No I/O here.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/embeddings.h"
#include "core/result.h"
#include "core/usage.h"

namespace providers {

// [begin, end) row ranges of at most `limit` rows each, in order (limit 0: one range).
std::vector<std::pair<size_t, size_t>> split_batches(size_t rows, size_t limit);

// The upstream body for rows [begin, end): model, input (always an array), dimensions, user, and
// encoding_format "float" (the gateway encodes base64 itself, so every vendor is read one way).
std::string embeddings_body(const core::EmbeddingRequest& req, size_t begin, size_t end, std::string_view model);

struct EmbeddingBatch {
  std::vector<std::string> vectors;  // minified JSON arrays of numbers, by the upstream's index
  core::Usage usage;                 // present when the answer carried usage
};

// One sub-batch's answer: exactly `rows` vectors with indexes 0..rows-1, each once, each an array of
// numbers. Anything else is the upstream's fault (server_error, so the request fails over).
core::Result<EmbeddingBatch> parse_embeddings_answer(std::string_view body, size_t rows, std::string_view vendor);

// The OpenAI answer {object:list, data:[{object:embedding, index, embedding}], model, usage} over
// `vectors` in input order. Usage: prompt_tokens = total_tokens = usage.prompt_tokens.
std::string embeddings_answer(const std::vector<std::string>& vectors, std::string_view model, const core::Usage& usage);

}  // namespace providers
