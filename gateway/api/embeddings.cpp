#include "gateway/api/embeddings.h"

#include <simdjson.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "core/json_members.h"
#include "core/json_writer.h"
#include "gateway/api/client_json.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using client_json::bad;
using core::json::type_name;

constexpr std::array<std::string_view, 5> kKeys{"model", "input", "dimensions", "encoding_format", "user"};
enum Key : size_t { k_model, k_input, k_dimensions, k_encoding_format, k_user };
using Members = core::json::StrictMembers<kKeys.size()>;

constexpr int64_t kMaxTokenId = 0x7fffffff;

// About one token per CJK character and per four other bytes (the chat estimate's rule), at least one.
int64_t estimate_text_tokens(std::string_view s) {
  int64_t cjk = 0, other = 0;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len >= 3) ++cjk;
    else other += static_cast<int64_t>(len);
    i += len;
  }
  return std::max<int64_t>(1, cjk + (other + 3) / 4);
}

// One row: a non-empty string, or a non-empty array of token ids.
core::Status read_row(element v, const std::string& p, core::EmbeddingRequest& out) {
  if (v.is_string()) {
    const std::string_view s = v.get_string().value_unsafe();
    if (s.empty()) return bad("'" + p + "' must not be an empty string", p);
    out.rows.push_back(simdjson::minify(v));
    out.est_tokens += estimate_text_tokens(s);
    return core::ok_status();
  }
  if (!v.is_array()) return bad("'" + p + "' must be a string or an array of token ids, not " + type_name(v), p);
  size_t n = 0;
  const simdjson::dom::array v_items = v.get_array().value_unsafe();  // a named array: a temporary dies before the loop body
  for (element t : v_items) {
    int64_t id = -1;
    if (!t.is_int64() || (id = t.get_int64().value_unsafe()) < 0 || id > kMaxTokenId)
      return bad("'" + p + "[" + std::to_string(n) + "]' must be a token id (an integer from 0 to 2147483647)",
                 p + "[" + std::to_string(n) + "]");
    ++n;
  }
  if (n == 0) return bad("'" + p + "' must not be an empty array of token ids", p);
  out.rows.push_back(simdjson::minify(v));
  out.est_tokens += static_cast<int64_t>(n);
  return core::ok_status();
}

// `input`: one string, one token array, or an array of strings / of token arrays.
core::Status read_input(element v, core::EmbeddingRequest& out) {
  if (v.is_string()) return read_row(v, "input", out);
  if (!v.is_array())
    return bad("'input' must be a string, an array of strings, an array of token ids or an array of token-id arrays, "
               "not " + std::string(type_name(v)), "input");
  auto arr = v.get_array().value_unsafe();
  if (arr.size() == 0) return bad("'input' must not be an empty array", "input");
  element first = arr.at(0).value_unsafe();
  if (first.is_int64() || first.is_uint64() || first.is_double()) return read_row(v, "input", out);  // one token array
  if (arr.size() > kMaxEmbeddingRows)
    return bad("'input' has " + std::to_string(arr.size()) + " items; at most " + std::to_string(kMaxEmbeddingRows) +
                   " are allowed in one request", "input", "too_many_inputs");
  const bool strings = first.is_string();
  size_t i = 0;
  for (element row : arr) {
    const std::string p = "input[" + std::to_string(i++) + "]";
    if (row.is_string() != strings)
      return bad("'" + p + "' must be " + (strings ? "a string" : "an array of token ids") +
                     " like the first item (an input array holds strings or token arrays, not both)", p);
    if (auto s = read_row(row, p, out); !s) return s;
  }
  return core::ok_status();
}

core::Status read_options(const Members& m, core::EmbeddingRequest& out) {
  element v;
  if (m.get(k_dimensions, v) && !v.is_null()) {
    int64_t d = 0;
    if (!v.is_int64() || (d = v.get_int64().value_unsafe()) < 1 || d > kMaxEmbeddingDimensions)
      return bad("'dimensions' must be an integer from 1 to " + std::to_string(kMaxEmbeddingDimensions), "dimensions");
    out.dimensions = d;
  }
  if (m.get(k_encoding_format, v) && !v.is_null()) {
    const std::string_view f = v.is_string() ? v.get_string().value_unsafe() : std::string_view();
    if (f != "float" && f != "base64")
      return bad("'encoding_format' must be \"float\" or \"base64\"", "encoding_format");
    out.base64 = f == "base64";
  }
  if (m.get(k_user, v) && !v.is_null()) {
    if (!v.is_string()) return bad("'user' must be a string, not " + std::string(type_name(v)), "user");
    out.user = std::string(v.get_string().value_unsafe());
  }
  return core::ok_status();
}

// The members outside kKeys, refused by name: the upstream body is rebuilt, so one silently dropped
// would change the answer without the client knowing.
core::Status refuse_unknown(element root) {
  for (auto field : simdjson::dom::object(root))
    if (std::find(kKeys.begin(), kKeys.end(), field.key) == kKeys.end())
      return bad("'" + client_json::shown(field.key) + "' is not a member of an embeddings request this gateway takes",
                 client_json::shown(field.key), "unsupported_parameter");
  return core::ok_status();
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

core::Result<core::ChatRequest> parse_embeddings_request(std::string body) {
  auto parser = client_json::make_parser();
  element root;
  if (auto s = client_json::parse_client_body(parser, body, root); !s) return s.error();
  const Members m(kKeys, root.get_object().value_unsafe());
  if (m.ambiguity()) return client_json::ambiguity_error(m.ambiguity(), "$");
  if (auto s = refuse_unknown(root); !s) return s.error();
  element v;
  if (!m.get(k_model, v) || !v.is_string() || v.get_string().value_unsafe().empty())
    return bad("'model' is required: a non-empty string (a model name, an alias or \"auto\")", "model");
  core::ChatRequest req;
  req.model = std::string(v.get_string().value_unsafe());
  auto er = std::make_shared<core::EmbeddingRequest>();
  if (!m.get(k_input, v) || v.is_null()) return bad("'input' is required", "input");
  if (auto s = read_input(v, *er); !s) return s.error();
  if (auto s = read_options(m, *er); !s) return s.error();
  if (er->est_tokens > kMaxEmbeddingTokens)
    return core::make_error(core::ErrorKind::payload_too_large,
                            "'input' holds about " + std::to_string(er->est_tokens) + " tokens; at most " +
                                std::to_string(kMaxEmbeddingTokens) + " are allowed in one request",
                            core::ErrorSource::client, "input_too_large", "input");
  req.max_tokens = 0;
  req.prompt_bytes = static_cast<int64_t>(body.size());
  req.embedding = std::move(er);
  req.raw_body = std::move(body);
  return req;
}

std::string float32_base64(const double* values, size_t n) {
  std::vector<unsigned char> bytes(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(values[i]);
    uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<unsigned char>(u >> (8 * b));  // little-endian
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t a = bytes[i], b = i + 1 < bytes.size() ? bytes[i + 1] : 0, c = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const uint32_t w = (a << 16) | (b << 8) | c;
    out += kB64[(w >> 18) & 63];
    out += kB64[(w >> 12) & 63];
    out += i + 1 < bytes.size() ? kB64[(w >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kB64[w & 63] : '=';
  }
  return out;
}

core::Result<std::string> embeddings_client_answer(std::string_view upstream, std::string_view model, bool base64) {
  simdjson::dom::parser parser;
  element root;
  simdjson::dom::array data;
  if (parser.parse(upstream.data(), upstream.size()).get(root) != simdjson::SUCCESS ||
      root["data"].get_array().get(data) != simdjson::SUCCESS)
    return client_json::upstream_fault("the embeddings answer is not a list");
  std::string s;
  s.reserve(upstream.size() + 64);
  s += "{\"object\":\"list\",\"data\":[";
  std::vector<double> values;
  size_t i = 0;
  for (element item : data) {
    element vec;
    if (item["embedding"].get(vec) != simdjson::SUCCESS || !vec.is_array())
      return client_json::upstream_fault("an embeddings answer item has no vector");
    if (i) s += ',';
    s += "{\"object\":\"embedding\",\"index\":" + std::to_string(i++) + ",\"embedding\":";
    if (!base64) {
      s += simdjson::minify(vec);
    } else {
      values.clear();
      const simdjson::dom::array vec_items = vec.get_array().value_unsafe();  // a named array: a temporary dies before the loop body
      for (element x : vec_items) {
        double d = 0;
        if (x.get_double().get(d) != simdjson::SUCCESS) {
          int64_t n = 0;
          if (x.get_int64().get(n) != simdjson::SUCCESS) return client_json::upstream_fault("an embedding holds a non-number");
          d = static_cast<double>(n);
        }
        values.push_back(d);
      }
      s += '"';
      s += float32_base64(values.data(), values.size());
      s += '"';
    }
    s += '}';
  }
  s += "],\"model\":";
  std::string_view upstream_model;
  if (model.empty() && root["model"].get_string().get(upstream_model) != simdjson::SUCCESS) upstream_model = "";
  core::append_json_string(s, model.empty() ? upstream_model : model);
  element usage;
  s += ",\"usage\":";
  s += root["usage"].get(usage) == simdjson::SUCCESS ? simdjson::minify(usage) : std::string("{\"prompt_tokens\":0,\"total_tokens\":0}");
  s += '}';
  return s;
}

}  // namespace gateway
