#include "providers/embeddings_wire.h"

#include <simdjson.h>

#include <algorithm>

#include "core/json_writer.h"

namespace providers {
namespace {

using simdjson::dom::element;

core::Error upstream_bad(std::string_view vendor, const std::string& what) {
  return core::make_error(core::ErrorKind::server_error, std::string(vendor) + " sent an embeddings answer " + what,
                          core::ErrorSource::upstream, "invalid_upstream_answer");
}

// A token count member: a non-negative integer, else the usage is marked malformed.
void read_count(element usage, const char* key, int64_t& out, bool& malformed) {
  element v;
  if (usage[key].get(v) != simdjson::SUCCESS || v.is_null()) return;
  int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0) {
    malformed = true;
    return;
  }
  out = n;
}

core::Usage read_usage(element root) {
  core::Usage u;
  element usage;
  if (root["usage"].get(usage) != simdjson::SUCCESS || !usage.is_object()) return u;
  int64_t prompt = -1, total = -1;
  read_count(usage, "prompt_tokens", prompt, u.malformed);
  read_count(usage, "total_tokens", total, u.malformed);
  if (prompt < 0 && total < 0) return u;
  u.present = true;
  u.prompt_tokens = prompt >= 0 ? prompt : total;  // input only: an embedding has no output tokens
  return u;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> split_batches(size_t rows, size_t limit) {
  std::vector<std::pair<size_t, size_t>> out;
  if (limit == 0) limit = rows ? rows : 1;
  for (size_t b = 0; b < rows; b += limit) out.emplace_back(b, std::min(rows, b + limit));
  return out;
}

std::string embeddings_body(const core::EmbeddingRequest& req, size_t begin, size_t end, std::string_view model) {
  std::string s = "{\"model\":";
  core::append_json_string(s, model);
  s += ",\"input\":[";
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) s += ',';
    s += req.rows[i];
  }
  s += "],\"encoding_format\":\"float\"";
  if (req.dimensions) s += ",\"dimensions\":" + std::to_string(*req.dimensions);
  if (!req.user.empty()) {
    s += ",\"user\":";
    core::append_json_string(s, req.user);
  }
  s += '}';
  return s;
}

core::Result<EmbeddingBatch> parse_embeddings_answer(std::string_view body, size_t rows, std::string_view vendor) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS || !root.is_object())
    return upstream_bad(vendor, "that is not a JSON object");
  simdjson::dom::array data;
  if (root["data"].get_array().get(data) != simdjson::SUCCESS) return upstream_bad(vendor, "without a data array");
  EmbeddingBatch out;
  out.vectors.resize(rows);
  size_t seen = 0;
  for (element item : data) {
    int64_t index = -1;
    element vec;
    if (!item.is_object() || item["index"].get_int64().get(index) != simdjson::SUCCESS ||
        item["embedding"].get(vec) != simdjson::SUCCESS)
      return upstream_bad(vendor, "with an item lacking index or embedding");
    if (index < 0 || static_cast<size_t>(index) >= rows || !out.vectors[index].empty())
      return upstream_bad(vendor, "with index " + std::to_string(index) + " out of range or repeated (" +
                                      std::to_string(rows) + " inputs sent)");
    if (!vec.is_array()) return upstream_bad(vendor, "whose embedding is not an array of numbers");
    size_t n = 0;
    const simdjson::dom::array vec_items = vec.get_array().value_unsafe();  // a named array: a temporary dies before the loop body
    for (element x : vec_items) {
      if (!x.is_number()) return upstream_bad(vendor, "whose embedding is not an array of numbers");
      ++n;
    }
    if (n == 0) return upstream_bad(vendor, "with an empty embedding");
    out.vectors[index] = simdjson::minify(vec);
    ++seen;
  }
  if (seen != rows)
    return upstream_bad(vendor, "with " + std::to_string(seen) + " embeddings for " + std::to_string(rows) + " inputs");
  out.usage = read_usage(root);
  return out;
}

std::string embeddings_answer(const std::vector<std::string>& vectors, std::string_view model, const core::Usage& usage) {
  size_t size = 128;
  for (const auto& v : vectors) size += v.size() + 48;
  std::string s;
  s.reserve(size);
  s += "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i) s += ',';
    s += "{\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
    s += vectors[i];
    s += '}';
  }
  s += "],\"model\":";
  core::append_json_string(s, model);
  s += ",\"usage\":{\"prompt_tokens\":" + std::to_string(usage.prompt_tokens) +
       ",\"total_tokens\":" + std::to_string(usage.prompt_tokens) + "}}";
  return s;
}

}  // namespace providers
