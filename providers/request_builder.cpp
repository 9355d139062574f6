#include "providers/request_builder.h"

#include <simdjson.h>

#include "core/json_writer.h"

namespace providers {

core::Result<std::string> build_upstream_body(std::string_view client_body, std::string_view upstream_model,
                                              bool stream) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string p(client_body);
  simdjson::dom::element root;
  if (parser.parse(p).get(root) != simdjson::SUCCESS || !root.is_object())
    return core::make_error(core::ErrorKind::bad_request, "request body is not a JSON object",
                            core::ErrorSource::client);
  std::string out;
  out.reserve(client_body.size() + 64);
  out += "{\"model\":";
  core::append_json_string(out, upstream_model);
  for (auto field : simdjson::dom::object(root)) {
    if (field.key == "model" || field.key == "stream_options" || field.key == "stream") continue;
    out.push_back(',');
    core::append_json_string(out, field.key);
    out.push_back(':');
    out += simdjson::minify(field.value);
  }
  if (stream) {
    out += ",\"stream\":true,\"stream_options\":{\"include_usage\":true";
    simdjson::dom::object so;
    if (root["stream_options"].get(so) == simdjson::SUCCESS) {
      for (auto f : so) {
        if (f.key == "include_usage") continue;
        out.push_back(',');
        core::append_json_string(out, f.key);
        out.push_back(':');
        out += simdjson::minify(f.value);
      }
    }
    out.push_back('}');
  } else {
    out += ",\"stream\":false";
  }
  out.push_back('}');
  return out;
}

}  // namespace providers
