#pragma once
// The items of a Responses conversation (messages, function calls and their outputs, reasoning) as
// chat messages, and this request's input items in the normalised form the API lists them in.
// Used by openai_responses.cpp only; the rules are documented in openai_responses.h.
#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gateway {

class ItemReader {
 public:
  // `response_id` (resp_...) stems the ids minted for input items that have none.
  explicit ItemReader(std::string_view response_id);

  // The system message that comes first (the request's `instructions`).
  void system(std::string_view text);
  // The items of the responses this one continues (a JSON array; "" is none). They were checked
  // when stored, but a fault in them is still a 400, on param previous_response_id.
  core::Status read_prior(std::string_view items_json);
  // The request's `input`: a string (one user message) or an array of items.
  core::Status read_input(simdjson::dom::element input);
  // The chat messages, comma-separated; an error if a function call is left unanswered or no
  // message was given.
  core::Result<std::string> finish();
  // The input items read by read_input, as a JSON array.
  std::string input_items_json() const { return "[" + normalised_ + "]"; }

 private:
  struct Assistant {  // the assistant chat message being gathered
    std::string reasoning;
    std::string text;
    std::string tool_calls;  // comma-separated chat tool calls
    bool has_text = false;
    bool output() const { return has_text || !tool_calls.empty(); }
  };
  struct Fields;  // one item's members (responses_items.cpp)
  core::Status read_item(simdjson::dom::element item, const std::string& p, bool collect);
  core::Status read_message(const Fields& f, const std::string& p, bool collect);
  core::Status read_function_call(const Fields& f, const std::string& p, bool collect);
  core::Status read_function_output(const Fields& f, const std::string& p, bool collect);
  core::Status read_reasoning(const Fields& f, const std::string& p, bool collect);
  core::Status unanswered_before(const std::string& p) const;
  void flush_assistant();
  void collect_item(bool collect, std::string json);
  std::string item_id(const Fields& f, std::string_view prefix) const;

  std::string stem_;        // the response id without "resp_"
  std::string messages_;    // chat messages written so far
  std::string normalised_;  // input items, comma-separated
  size_t input_count_ = 0;  // input items read (ids minted from it)
  Assistant assistant_;
  std::vector<std::string> pending_calls_;   // call_ids that await an output
  std::vector<std::string> answered_calls_;  // call_ids answered already
  bool any_message_ = false;                 // a message other than the system one was written
};

}  // namespace gateway
