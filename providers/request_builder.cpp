#include "providers/request_builder.h"

#include "core/json_scan.h"
#include "core/json_writer.h"

namespace providers {

// The client body has been validated by the gateway's parser; here it is only re-cut: every member
// but model/stream/stream_options is copied byte for byte (no parse, no re-serialisation).
core::Result<std::string> build_upstream_body(std::string_view client_body, std::string_view upstream_model,
                                              bool stream) {
  namespace json = core::json;
  std::string out;
  out.reserve(client_body.size() + 96);
  out += "{\"model\":";
  core::append_json_string(out, upstream_model);
  auto copy = [&out](const json::Member& m) {
    out += ",\"";
    out += m.key;
    out += "\":";
    out += m.value;
  };
  std::string_view stream_options;
  bool ok = json::for_each_member(client_body, [&](const json::Member& m) {
    if (json::key_is(m.key, "model") || json::key_is(m.key, "stream")) return;
    if (json::key_is(m.key, "stream_options")) {
      stream_options = m.value;
      return;
    }
    copy(m);
  });
  if (!ok)
    return core::make_error(core::ErrorKind::bad_request, "request body is not a JSON object",
                            core::ErrorSource::client);
  if (stream) {
    // Usage is always requested upstream (cost accounting); the client's other options pass through.
    out += ",\"stream\":true,\"stream_options\":{\"include_usage\":true";
    json::for_each_member(stream_options, [&](const json::Member& m) {
      if (!json::key_is(m.key, "include_usage")) copy(m);
    });
    out.push_back('}');
  } else {
    out += ",\"stream\":false";
  }
  out.push_back('}');
  return out;
}

}  // namespace providers
