// The gateway's side of the native Responses relay: the body relayed (a continuation expanded into
// `input`), the vendor's ids and sequence numbers replaced by the gateway's, output items stored in
// the form the translation reads back, and the failed event after content.
#include "gateway/api/responses_native.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using gateway::NativeEventRewriter;
using gateway::ResponseIdentity;

ResponseIdentity who() { return {"resp_gw1", "auto", true, "resp_prev"}; }

TEST(ResponsesNativeBody, AFreshRequestLosesOnlyPreviousResponseId) {
  auto out = gateway::responses_native_body(R"({"model":"auto","input":"hi","tools":[{"type":"web_search"}]})", "",
                                            R"([{"type":"message"}])");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"auto","input":"hi","tools":[{"type":"web_search"}]})");
}

TEST(ResponsesNativeBody, AContinuationCarriesTheWholeConversation) {
  auto out = gateway::responses_native_body(R"({"model":"auto","previous_response_id":"resp_p","input":"next"})",
                                            R"([{"a":1},{"b":2}])", R"([{"c":3}])");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"auto","input":[{"a":1},{"b":2},{"c":3}]})");
  auto empty_own = gateway::responses_native_body(R"({"previous_response_id":"r","input":[]})", R"([{"a":1}])", "[]");
  ASSERT_TRUE(empty_own);
  EXPECT_EQ(*empty_own, R"({"input":[{"a":1}]})");
  EXPECT_FALSE(gateway::responses_native_body("nope", "", "[]"));
}

TEST(ResponsesNativeResponse, TheGatewaysIdentityReplacesTheVendors) {
  auto out = gateway::rewrite_native_response(
      R"({"id":"vendor-uuid","object":"response","model":"qwen3.8-max","store":false,"previous_response_id":null,"output":[]})",
      who());
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"id":"resp_gw1","object":"response","model":"auto","store":true,"previous_response_id":"resp_prev","output":[]})");
}

TEST(ResponsesNativeOutput, ItemsKeepWhatTheTranslationReads) {
  const std::string items = gateway::native_output_items(
      R"({"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","x_vendor":1,)"
      R"("content":[{"type":"output_text","text":"hi","annotations":[],"x_part":true}]},)"
      R"({"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"t"}],"encrypted_content":"zz"},)"
      R"({"type":"web_search_call","id":"ws_1","status":"completed"}]})");
  EXPECT_EQ(items, R"([{"type":"message","id":"msg_1","status":"completed","role":"assistant",)"
                   R"("content":[{"type":"output_text","text":"hi","annotations":[]}]},)"
                   R"({"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"t"}]},)"
                   R"({"type":"web_search_call","id":"ws_1","status":"completed"}])");
  EXPECT_EQ(gateway::native_output_items(R"({"id":"x"})"), "[]");
}

TEST(ResponsesNativeEvents, OneSequenceFromZeroAndTheGatewaysIds) {
  NativeEventRewriter r(who());
  auto a = r.rewrite(R"({"type":"response.created","sequence_number":7,"response":{"id":"v","model":"m","status":"in_progress"}})");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_gw1","model":"auto","status":"in_progress"}})");
  auto b = r.rewrite(R"({"type":"response.output_text.delta","item_id":"msg_1","delta":"x"})");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, R"({"sequence_number":1,"type":"response.output_text.delta","item_id":"msg_1","delta":"x"})");
  EXPECT_EQ(r.next_sequence(), 2);
  EXPECT_FALSE(r.rewrite("not json"));
  EXPECT_EQ(r.next_sequence(), 2);  // nothing was sent
}

TEST(ResponsesNativeEvents, FailedAfterContentCarriesTheDoneItemsAndTheCount) {
  NativeEventRewriter r(who());
  ASSERT_TRUE(r.rewrite(R"({"type":"response.created","sequence_number":3,"response":{"id":"v","status":"in_progress","output":[]}})"));
  ASSERT_TRUE(r.rewrite(R"({"type":"response.output_item.done","sequence_number":4,"item":{"type":"function_call","id":"fc_1","call_id":"c","name":"f","arguments":"{}","x":1}})"));
  core::Usage u;
  u.prompt_tokens = 10;
  u.completion_tokens = 3;
  const std::string failed = r.failed(core::make_error(core::ErrorKind::server_error, "upstream broke"), u);
  EXPECT_EQ(failed.rfind(R"({"type":"response.failed","sequence_number":2,"response":{)", 0), 0u) << failed;
  EXPECT_NE(failed.find(R"("id":"resp_gw1")"), std::string::npos);
  EXPECT_NE(failed.find(R"("status":"failed")"), std::string::npos);
  EXPECT_NE(failed.find(R"("output":[{"type":"function_call","id":"fc_1","call_id":"c","name":"f","arguments":"{}"}])"),
            std::string::npos) << failed;
  EXPECT_NE(failed.find(R"("input_tokens":10)"), std::string::npos);
  EXPECT_NE(failed.find("upstream broke"), std::string::npos);
  // Before any snapshot: a minimal Response object still names the gateway's id.
  NativeEventRewriter fresh(who());
  const std::string bare = fresh.failed(core::make_error(core::ErrorKind::timeout, "slow"), std::nullopt);
  EXPECT_NE(bare.find(R"("id":"resp_gw1")"), std::string::npos);
  EXPECT_NE(bare.find(R"("usage":null)"), std::string::npos);
}

}  // namespace
