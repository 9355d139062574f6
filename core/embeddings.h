#pragma once
// An embeddings request (POST /v1/embeddings) in the form providers need: the input rows, each kept
// as the JSON text the client wrote (a string literal or an array of token ids), so that a batch
// can be split and re-sent without re-encoding the client's text.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace core {

struct EmbeddingRequest {
  std::vector<std::string> rows;       // JSON text of each input row, in input order
  std::optional<int64_t> dimensions;   // asked-for vector length
  bool base64 = false;                 // encoding_format "base64" (little-endian float32)
  std::string user;                    // forwarded as the client sent it
  int64_t est_tokens = 0;              // estimated input tokens over all rows
};

}  // namespace core
