#include "gateway/api/responses_items.h"

#include <algorithm>
#include <array>

#include "core/json_members.h"
#include "core/json_scan.h"
#include "core/json_writer.h"
#include "gateway/api/client_json.h"

namespace gateway {
namespace {

using simdjson::dom::element;
using client_json::ambiguity_error;
using client_json::bad;
using client_json::json_quoted;
using core::json::type_name;

std::string_view str(element e) { return e.get_string().value_unsafe(); }

// Every member an item has; which ones an item may use depends on its type.
constexpr std::array<std::string_view, 11> kItemKeys{"type", "role", "content", "id", "status", "call_id",
                                                     "name", "arguments", "output", "summary", "encrypted_content"};
enum ItemKey : size_t { i_type, i_role, i_content, i_id, i_status, i_call_id, i_name, i_arguments, i_output,
                        i_summary, i_encrypted_content };
constexpr uint64_t bit(size_t k) { return uint64_t{1} << k; }
constexpr uint64_t kCommon = bit(i_type) | bit(i_id) | bit(i_status);
constexpr uint64_t kMessageMembers = kCommon | bit(i_role) | bit(i_content);
constexpr uint64_t kCallMembers = kCommon | bit(i_call_id) | bit(i_name) | bit(i_arguments);
constexpr uint64_t kOutputMembers = kCommon | bit(i_call_id) | bit(i_output);
constexpr uint64_t kReasoningMembers = kCommon | bit(i_summary) | bit(i_content) | bit(i_encrypted_content);

// Every member a content part has; which ones a part may use depends on its type.
constexpr std::array<std::string_view, 8> kPartKeys{"type", "text", "image_url", "detail", "file_id", "annotations",
                                                    "logprobs", "refusal"};
enum PartKey : size_t { q_type, q_text, q_image_url, q_detail, q_file_id, q_annotations, q_logprobs, q_refusal };
using PartMembers = core::json::StrictMembers<kPartKeys.size()>;

// The members of `obj` named in `names` whose bit is not in `allowed` (or not named at all) are
// refused, the first one named.
template <size_t N>
core::Status refuse_members(element obj, const std::array<std::string_view, N>& names, uint64_t allowed,
                            const std::string& p, std::string_view what) {
  for (auto field : simdjson::dom::object(obj)) {
    const auto it = std::find(names.begin(), names.end(), field.key);
    if (it == names.end() || !(allowed & bit(size_t(it - names.begin()))))
      return bad("'" + p + "." + client_json::shown(field.key) + "' is not a member of " + std::string(what) +
                     " this gateway takes",
                 p + "." + client_json::shown(field.key), "unsupported_parameter");
  }
  return core::ok_status();
}

core::Status required_string(const core::json::StrictMembers<kItemKeys.size()>& m, ItemKey k, const std::string& p,
                             std::string_view& out, bool may_be_empty = false) {
  element v;
  const std::string name = p + "." + std::string(kItemKeys[k]);
  if (!m.get(k, v) || !v.is_string() || (!may_be_empty && str(v).empty()))
    return bad(name + (may_be_empty ? " must be a string" : " must be a non-empty string"), name);
  out = str(v);
  return core::ok_status();
}

// One message's content parts: the chat message's content and the normalised parts.
struct Content {
  std::vector<std::string> chat;  // chat content parts
  std::string text;               // all text parts, joined (what an assistant message carries)
  bool only_text = true;
  std::string normalised;         // comma-separated input-item parts

  void add_text(std::string_view t, std::string_view type, std::string_view annotations) {
    chat.push_back("{\"type\":\"text\",\"text\":" + core::json_string(t) + "}");
    text += t;
    if (!normalised.empty()) normalised += ',';
    normalised += "{\"type\":\"" + std::string(type) + "\",\"text\":" + core::json_string(t);
    if (type == "output_text") normalised += ",\"annotations\":" + std::string(annotations);
    normalised += '}';
  }
  // The chat message's "content" value: a plain string for one text part (what every
  // OpenAI-compatible server takes), an array otherwise.
  std::string chat_json() const {
    if (chat.size() == 1 && only_text) return core::json_string(text);
    std::string s = "[";
    for (size_t i = 0; i < chat.size(); ++i) s += (i ? "," : "") + chat[i];
    return s + "]";
  }
};

core::Status read_image(const PartMembers& pm, const std::string& p, Content& c) {
  element url, x;
  if (pm.get(q_file_id, x) && !x.is_null())
    return bad(p + ".file_id: files stored at OpenAI cannot be sent through this gateway; use image_url",
               p + ".file_id", "unsupported_parameter");
  if (!pm.get(q_image_url, url) || !url.is_string() || str(url).empty())
    return bad(p + ".image_url must be a non-empty string (a URL or a data: URL)", p + ".image_url");
  std::string detail = "\"auto\"";
  if (pm.get(q_detail, x) && !x.is_null()) {
    if (!x.is_string() || (str(x) != "auto" && str(x) != "low" && str(x) != "high"))
      return bad(p + ".detail must be \"auto\", \"low\" or \"high\"", p + ".detail");
    detail = simdjson::minify(x);
  }
  const std::string u = simdjson::minify(url);
  c.chat.push_back("{\"type\":\"image_url\",\"image_url\":{\"url\":" + u + ",\"detail\":" + detail + "}}");
  c.only_text = false;
  if (!c.normalised.empty()) c.normalised += ',';
  c.normalised += "{\"type\":\"input_image\",\"image_url\":" + u + ",\"detail\":" + detail + "}";
  return core::ok_status();
}

core::Status read_part(element part, const std::string& p, bool assistant, Content& c) {
  if (!part.is_object()) return bad(p + " must be an object", p);
  const PartMembers pm(kPartKeys, part.get_object().value_unsafe());
  if (pm.ambiguity()) return ambiguity_error(pm.ambiguity(), "$." + p);
  element type, x;
  if (!pm.get(q_type, type) || !type.is_string()) return bad(p + ".type must be a string", p + ".type");
  const std::string_view t = str(type);
  if (t == "input_text" || t == "output_text") {
    const uint64_t allowed = t == "input_text" ? bit(q_type) | bit(q_text)
                                               : bit(q_type) | bit(q_text) | bit(q_annotations) | bit(q_logprobs);
    if (auto s = refuse_members(part, kPartKeys, allowed, p, "a text part"); !s) return s;
    if (!pm.get(q_text, x) || !x.is_string()) return bad(p + ".text must be a string", p + ".text");
    element ann;
    const bool has_ann = pm.get(q_annotations, ann) && ann.is_array();
    c.add_text(str(x), t, has_ann ? simdjson::minify(ann) : std::string("[]"));
    return core::ok_status();
  }
  if (t == "refusal" && assistant) {
    if (auto s = refuse_members(part, kPartKeys, bit(q_type) | bit(q_refusal), p, "a refusal part"); !s) return s;
    if (!pm.get(q_refusal, x) || !x.is_string()) return bad(p + ".refusal must be a string", p + ".refusal");
    c.add_text(str(x), "output_text", "[]");
    return core::ok_status();
  }
  if (t == "input_image" && !assistant) {
    const uint64_t allowed = bit(q_type) | bit(q_image_url) | bit(q_detail) | bit(q_file_id);
    if (auto s = refuse_members(part, kPartKeys, allowed, p, "an image part"); !s) return s;
    return read_image(pm, p, c);
  }
  return bad(p + ".type " + json_quoted(t) + " is not a content part this gateway takes in this message (input_text, "
             "input_image for user messages; output_text, refusal for assistant messages)",
             p + ".type", "unsupported_parameter");
}

core::Status read_content(element content, const std::string& p, bool assistant, Content& c) {
  if (content.is_string()) {
    c.add_text(str(content), assistant ? "output_text" : "input_text", "[]");
    return core::ok_status();
  }
  if (!content.is_array())
    return bad(p + " must be a string or an array of content parts, not " + type_name(content), p);
  size_t k = 0;
  for (element part : simdjson::dom::array(content))
    if (auto s = read_part(part, p + "[" + std::to_string(k++) + "]", assistant, c); !s) return s;
  if (k == 0) return bad(p + " must not be empty", p);
  return core::ok_status();
}

// The text of a function_call_output: a string, or text parts joined.
core::Status read_output_text(element v, const std::string& p, std::string& out) {
  if (v.is_string()) {
    out = std::string(str(v));
    return core::ok_status();
  }
  if (!v.is_array()) return bad(p + " must be a string or an array of input_text parts", p);
  Content c;
  size_t k = 0;
  for (element part : simdjson::dom::array(v)) {
    const std::string pp = p + "[" + std::to_string(k++) + "]";
    element type;
    if (!part.is_object() || part["type"].get(type) || !type.is_string() || str(type) != "input_text")
      return bad(pp + ": a function_call_output carries input_text parts only (chat tool messages are text)", pp);
    if (auto s = read_part(part, pp, false, c); !s) return s;
  }
  out = c.text;
  return core::ok_status();
}

// The text of a reasoning item: its summary parts, else its reasoning_text parts, joined.
core::Status read_reasoning_text(element parts, const std::string& p, std::string_view part_type, std::string& out) {
  if (!parts.is_array()) return bad(p + " must be an array", p);
  size_t k = 0;
  for (element part : simdjson::dom::array(parts)) {
    const std::string pp = p + "[" + std::to_string(k++) + "]";
    element type, text;
    if (!part.is_object() || part["type"].get(type) || !type.is_string() || str(type) != part_type)
      return bad(pp + " must be an object of type " + json_quoted(part_type), pp);
    if (part["text"].get(text) || !text.is_string()) return bad(pp + ".text must be a string", pp + ".text");
    constexpr std::array<std::string_view, 2> kTextPartKeys{"type", "text"};
    if (auto s = refuse_members(part, kTextPartKeys, bit(0) | bit(1), pp, "a reasoning part"); !s) return s;
    if (!out.empty()) out += '\n';
    out += str(text);
  }
  return core::ok_status();
}

}  // namespace

struct ItemReader::Fields {
  element item;
  core::json::StrictMembers<kItemKeys.size()> m;
};

ItemReader::ItemReader(std::string_view response_id)
    : stem_(response_id.substr(response_id.rfind("resp_", 0) == 0 ? 5 : 0)) {}

void ItemReader::system(std::string_view text) {
  messages_ += "{\"role\":\"system\",\"content\":" + core::json_string(text) + "}";
}

core::Status ItemReader::read_prior(std::string_view items_json) {
  if (core::json::trim(items_json).empty()) return core::ok_status();
  thread_local simdjson::dom::parser parser = client_json::make_parser();
  element root;
  auto padded = core::json::padded_copy(items_json, simdjson::SIMDJSON_PADDING);
  if (parser.parse(padded.data(), padded.size(), false).get(root) || !root.is_array())
    return core::make_error(core::ErrorKind::internal, "The stored items of the previous response are not a JSON array.");
  size_t k = 0;
  for (element item : simdjson::dom::array(root))
    if (auto s = read_item(item, "previous_response_id[" + std::to_string(k++) + "]", false); !s) return s;
  return core::ok_status();
}

core::Status ItemReader::read_input(element input) {
  if (input.is_string()) {
    flush_assistant();
    if (auto s = unanswered_before("input"); !s) return s;
    messages_ += std::string(messages_.empty() ? "" : ",") + "{\"role\":\"user\",\"content\":" +
                 core::json_string(str(input)) + "}";
    any_message_ = true;
    collect_item(true, "{\"id\":\"msg_" + stem_ + "_in0\",\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
                       "\"input_text\",\"text\":" + core::json_string(str(input)) + "}],\"status\":\"completed\"}");
    return core::ok_status();
  }
  if (!input.is_array()) return bad(std::string("'input' must be a string or an array of items, not ") + type_name(input), "input");
  size_t k = 0;
  for (element item : simdjson::dom::array(input))
    if (auto s = read_item(item, "input[" + std::to_string(k++) + "]", true); !s) return s;
  return core::ok_status();
}

core::Status ItemReader::read_item(element item, const std::string& p, bool collect) {
  if (!item.is_object()) return bad(p + " must be an object", p);
  const Fields f{item, core::json::StrictMembers<kItemKeys.size()>(kItemKeys, item.get_object().value_unsafe())};
  if (f.m.ambiguity()) return ambiguity_error(f.m.ambiguity(), "$." + p);
  element type;
  std::string_view t = "message";  // an item with a role and no type is a message
  if (f.m.get(i_type, type)) {
    if (!type.is_string()) return bad(p + ".type must be a string", p + ".type");
    t = str(type);
  } else if (!f.m.has(i_role)) {
    return bad(p + " needs a type (message, function_call, function_call_output, reasoning)", p + ".type");
  }
  using Reader = core::Status (ItemReader::*)(const Fields&, const std::string&, bool);
  struct Kind {
    std::string_view type;
    uint64_t members;
    std::string_view what;
    Reader read;
  };
  static constexpr std::array<Kind, 4> kKinds{{
      {"message", kMessageMembers, "a message item", &ItemReader::read_message},
      {"function_call", kCallMembers, "a function_call item", &ItemReader::read_function_call},
      {"function_call_output", kOutputMembers, "a function_call_output item", &ItemReader::read_function_output},
      {"reasoning", kReasoningMembers, "a reasoning item", &ItemReader::read_reasoning},
  }};
  for (const Kind& k : kKinds) {
    if (k.type != t) continue;
    if (auto s = refuse_members(item, kItemKeys, k.members, p, k.what); !s) return s;
    return (this->*k.read)(f, p, collect);
  }
  return bad(p + ".type " + json_quoted(t) + " is not an item this gateway takes (message, function_call, "
             "function_call_output, reasoning)",
             p + ".type", "unsupported_parameter");
}

core::Status ItemReader::read_message(const Fields& f, const std::string& p, bool collect) {
  std::string_view role;
  if (auto s = required_string(f.m, i_role, p, role); !s) return s;
  if (role != "user" && role != "assistant" && role != "system" && role != "developer")
    return bad(p + ".role " + json_quoted(role) + " is not one of user, assistant, system, developer", p + ".role");
  const bool assistant = role == "assistant";
  element content;
  if (!f.m.get(i_content, content)) return bad(p + ".content is required", p + ".content");
  Content c;
  if (auto s = read_content(content, p + ".content", assistant, c); !s) return s;
  if (auto s = unanswered_before(p); !s) return s;
  if (assistant) {
    if (assistant_.output()) flush_assistant();  // a second assistant message in a row
    assistant_.text += c.text;
    assistant_.has_text = true;
  } else {
    flush_assistant();
    messages_ += std::string(messages_.empty() ? "" : ",") + "{\"role\":\"" + (role == "user" ? "user" : "system") +
                 "\",\"content\":" + c.chat_json() + "}";
    any_message_ = true;
  }
  collect_item(collect, "{\"id\":" + core::json_string(item_id(f, "msg")) + ",\"type\":\"message\",\"role\":\"" +
                            std::string(role) + "\",\"content\":[" + c.normalised + "],\"status\":\"completed\"}");
  return core::ok_status();
}

core::Status ItemReader::read_function_call(const Fields& f, const std::string& p, bool collect) {
  std::string_view call_id, name, arguments;
  if (auto s = required_string(f.m, i_call_id, p, call_id); !s) return s;
  if (auto s = required_string(f.m, i_name, p, name); !s) return s;
  if (auto s = required_string(f.m, i_arguments, p, arguments, true); !s) return s;
  const std::string id(call_id);
  if (std::find(pending_calls_.begin(), pending_calls_.end(), id) != pending_calls_.end() ||
      std::find(answered_calls_.begin(), answered_calls_.end(), id) != answered_calls_.end())
    return bad(p + ".call_id " + json_quoted(id) + " is used by an earlier function_call", p + ".call_id");
  // A call after a tool output opens a new assistant turn: the calls before it must be answered.
  if (assistant_.tool_calls.empty())
    if (auto s = unanswered_before(p); !s) return s;
  if (!assistant_.tool_calls.empty()) assistant_.tool_calls += ',';
  assistant_.tool_calls += "{\"id\":" + core::json_string(id) + ",\"type\":\"function\",\"function\":{\"name\":" +
                           core::json_string(name) + ",\"arguments\":" + core::json_string(arguments) + "}}";
  pending_calls_.push_back(id);
  collect_item(collect, "{\"id\":" + core::json_string(item_id(f, "fc")) +
                            ",\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":" + core::json_string(id) +
                            ",\"name\":" + core::json_string(name) + ",\"arguments\":" + core::json_string(arguments) + "}");
  return core::ok_status();
}

core::Status ItemReader::read_function_output(const Fields& f, const std::string& p, bool collect) {
  std::string_view call_id;
  if (auto s = required_string(f.m, i_call_id, p, call_id); !s) return s;
  const std::string id(call_id);
  auto it = std::find(pending_calls_.begin(), pending_calls_.end(), id);
  if (it == pending_calls_.end()) {
    const bool answered = std::find(answered_calls_.begin(), answered_calls_.end(), id) != answered_calls_.end();
    return bad(p + ".call_id " + json_quoted(id) +
                   (answered ? " was answered already" : " does not match a function_call that comes before it"),
               p + ".call_id");
  }
  element output;
  if (!f.m.get(i_output, output)) return bad(p + ".output is required", p + ".output");
  std::string text;
  if (auto s = read_output_text(output, p + ".output", text); !s) return s;
  flush_assistant();
  pending_calls_.erase(it);
  answered_calls_.push_back(id);
  messages_ += std::string(messages_.empty() ? "" : ",") + "{\"role\":\"tool\",\"tool_call_id\":" +
               core::json_string(id) + ",\"content\":" + core::json_string(text) + "}";
  collect_item(collect, "{\"id\":" + core::json_string(item_id(f, "fco")) +
                            ",\"type\":\"function_call_output\",\"status\":\"completed\",\"call_id\":" +
                            core::json_string(id) + ",\"output\":" + simdjson::minify(output) + "}");
  return core::ok_status();
}

core::Status ItemReader::read_reasoning(const Fields& f, const std::string& p, bool collect) {
  element v;
  if (f.m.get(i_encrypted_content, v) && !v.is_null())
    return bad(p + ".encrypted_content can only be read by OpenAI; leave it out", p + ".encrypted_content",
               "unsupported_parameter");
  if (!f.m.get(i_summary, v)) return bad(p + ".summary is required (an array, possibly empty)", p + ".summary");
  std::string text;
  if (auto s = read_reasoning_text(v, p + ".summary", "summary_text", text); !s) return s;
  std::string item = "{\"id\":" + core::json_string(item_id(f, "rs")) + ",\"type\":\"reasoning\",\"summary\":" +
                     simdjson::minify(v);
  element content;
  if (f.m.get(i_content, content) && !content.is_null()) {
    std::string full;
    if (auto s = read_reasoning_text(content, p + ".content", "reasoning_text", full); !s) return s;
    if (text.empty()) text = std::move(full);
    item += ",\"content\":" + simdjson::minify(content);
  }
  if (assistant_.output()) flush_assistant();  // reasoning begins the next assistant turn
  if (!assistant_.reasoning.empty() && !text.empty()) assistant_.reasoning += '\n';
  assistant_.reasoning += text;
  collect_item(collect, item + "}");
  return core::ok_status();
}

core::Status ItemReader::unanswered_before(const std::string& p) const {
  if (pending_calls_.empty()) return core::ok_status();
  return bad(p + " comes before a function_call_output for call_id " + json_quoted(pending_calls_.front()) +
                 ": every function_call must be answered before the conversation goes on",
             p);
}

void ItemReader::flush_assistant() {
  Assistant a = std::move(assistant_);
  assistant_ = {};
  if (!a.output()) return;  // reasoning with no output after it is dropped
  messages_ += std::string(messages_.empty() ? "" : ",") + "{\"role\":\"assistant\",\"content\":" +
               (a.has_text ? core::json_string(a.text) : std::string("null"));
  if (!a.reasoning.empty()) messages_ += ",\"reasoning_content\":" + core::json_string(a.reasoning);
  if (!a.tool_calls.empty()) messages_ += ",\"tool_calls\":[" + a.tool_calls + "]";
  messages_ += '}';
  any_message_ = true;
}

void ItemReader::collect_item(bool collect, std::string json) {
  if (!collect) return;
  ++input_count_;
  if (!normalised_.empty()) normalised_ += ',';
  normalised_ += json;
}

std::string ItemReader::item_id(const Fields& f, std::string_view prefix) const {
  element v;
  if (f.m.get(i_id, v) && v.is_string() && !str(v).empty()) return std::string(str(v));
  return std::string(prefix) + "_" + stem_ + "_in" + std::to_string(input_count_);
}

core::Result<std::string> ItemReader::finish() {
  flush_assistant();
  if (!pending_calls_.empty())
    return bad("The function_call with call_id " + json_quoted(pending_calls_.front()) +
                   " has no function_call_output: send one in 'input'",
               "input");
  if (!any_message_) return bad("'input' is required: give a string or at least one item", "input");
  return messages_;
}

}  // namespace gateway
