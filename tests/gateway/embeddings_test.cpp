// POST /v1/embeddings decoding and answer encoding (gateway/api/embeddings.h).
#include "gateway/api/embeddings.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gateway {
namespace {

core::ChatRequest must_parse(const std::string& body) {
  auto r = parse_embeddings_request(body);
  EXPECT_TRUE(r.ok()) << body << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : core::ChatRequest{};
}

core::Error must_fail(const std::string& body) {
  auto r = parse_embeddings_request(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? core::Error{} : r.error();
}

TEST(EmbeddingsDecode, EveryInputForm) {
  auto one = must_parse(R"({"model":"auto","input":"héllo \"q\""})");
  ASSERT_TRUE(one.embedding);
  EXPECT_EQ(one.model, "auto");
  EXPECT_EQ(one.embedding->rows, std::vector<std::string>{R"("héllo \"q\"")"});
  EXPECT_FALSE(one.stream);
  EXPECT_EQ(one.max_tokens, 0);
  EXPECT_TRUE(one.messages.empty());

  auto many = must_parse(R"({"model":"m","input":["a","b","c"],"dimensions":64,"encoding_format":"base64","user":"u1"})");
  EXPECT_EQ(many.embedding->rows, (std::vector<std::string>{"\"a\"", "\"b\"", "\"c\""}));
  EXPECT_EQ(many.embedding->dimensions, 64);
  EXPECT_TRUE(many.embedding->base64);
  EXPECT_EQ(many.embedding->user, "u1");

  auto tokens = must_parse(R"({"model":"m","input":[1, 2, 3]})");
  EXPECT_EQ(tokens.embedding->rows, std::vector<std::string>{"[1,2,3]"});
  EXPECT_EQ(tokens.embedding->est_tokens, 3);

  auto token_rows = must_parse(R"({"model":"m","input":[[1,2],[3]],"encoding_format":"float"})");
  EXPECT_EQ(token_rows.embedding->rows, (std::vector<std::string>{"[1,2]", "[3]"}));
  EXPECT_FALSE(token_rows.embedding->base64);
  EXPECT_EQ(token_rows.embedding->est_tokens, 3);
}

TEST(EmbeddingsDecode, CjkTextEstimatesATokenPerCharacter) {
  auto r = must_parse(R"({"model":"m","input":"你好世界"})");
  EXPECT_EQ(r.embedding->est_tokens, 4);
  auto latin = must_parse(R"({"model":"m","input":"abcdefgh"})");
  EXPECT_EQ(latin.embedding->est_tokens, 2);
}

TEST(EmbeddingsDecode, BadInputsNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":null})", "input"},
      {R"({"model":"m","input":""})", "input"},
      {R"({"model":"m","input":[]})", "input"},
      {R"({"model":"m","input":["a",""]})", "input[1]"},
      {R"({"model":"m","input":["a",[1]]})", "input[1]"},
      {R"({"model":"m","input":[[1],"a"]})", "input[1]"},
      {R"({"model":"m","input":[[1,-1]]})", "input[0][1]"},
      {R"({"model":"m","input":[[1,2.5]]})", "input[0][1]"},
      {R"({"model":"m","input":[[1,2147483648]]})", "input[0][1]"},
      {R"({"model":"m","input":[[]]})", "input[0]"},
      {R"({"model":"m","input":[1,"a"]})", "input[1]"},
      {R"({"model":"m","input":{"a":1}})", "input"},
      {R"({"model":"m","input":true})", "input"},
      {R"({"model":"m","input":"a","dimensions":0})", "dimensions"},
      {R"({"model":"m","input":"a","dimensions":"64"})", "dimensions"},
      {R"({"model":"m","input":"a","dimensions":70000})", "dimensions"},
      {R"({"model":"m","input":"a","encoding_format":"int8"})", "encoding_format"},
      {R"({"model":"m","input":"a","user":1})", "user"},
      {R"({"input":"a"})", "model"},
      {R"({"model":"","input":"a"})", "model"},
      {R"({"model":"m","input":"a","extra":1})", "extra"},
  };
  for (const auto& c : cases) {
    core::Error e = must_fail(c.body);
    EXPECT_EQ(e.kind, core::ErrorKind::bad_request) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.message;
  }
}

TEST(EmbeddingsDecode, HostileBodies) {
  EXPECT_EQ(must_fail(R"({"model":"m","input":"a","input":"b"})").code, "duplicate_member");
  EXPECT_EQ(must_fail(R"({"model":"m","Model":"x","input":"a"})").code, "ambiguous_member");
  EXPECT_EQ(must_fail(R"({"model":"m","input":"a","encoding_format":"float","encoding_format":"base64"})").code,
            "duplicate_member");
  EXPECT_EQ(must_fail("[1]").kind, core::ErrorKind::bad_request);
  EXPECT_EQ(must_fail("{\"model\":\"m\",\"input\":\"\xff\"}").kind, core::ErrorKind::bad_request);
  std::string deep = "{\"model\":\"m\",\"input\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(must_fail(deep).kind, core::ErrorKind::bad_request);
}

TEST(EmbeddingsDecode, Bounds) {
  std::string rows = "[";
  for (size_t i = 0; i <= kMaxEmbeddingRows; ++i) rows += std::string(i ? "," : "") + "\"a\"";
  rows += "]";
  core::Error e = must_fail(R"({"model":"m","input":)" + rows + "}");
  EXPECT_EQ(e.code, "too_many_inputs");
  // Exactly the bound is fine.
  std::string ok = "[";
  for (size_t i = 0; i < kMaxEmbeddingRows; ++i) ok += std::string(i ? "," : "") + "\"a\"";
  ok += "]";
  EXPECT_EQ(must_parse(R"({"model":"m","input":)" + ok + "}").embedding->rows.size(), kMaxEmbeddingRows);
  // Too many tokens over all rows: 413.
  const std::string big(400000 * 4, 'x');
  core::Error too_big = must_fail(R"({"model":"m","input":")" + big + "\"}");
  EXPECT_EQ(too_big.kind, core::ErrorKind::payload_too_large);
  EXPECT_EQ(too_big.http_status(), 413);
}

TEST(EmbeddingsEncode, Float32Base64IsLittleEndian) {
  const double v[] = {1.0, -2.5, 0.0};
  const std::string b = float32_base64(v, 3);
  // 1.0f = 00 00 80 3f, -2.5f = 00 00 20 c0, 0.0f = 00 00 00 00
  EXPECT_EQ(b, "AACAPwAAIMAAAAAA");
  const double one[] = {1.0};
  EXPECT_EQ(float32_base64(one, 1), "AACAPw==");
  EXPECT_EQ(float32_base64(nullptr, 0), "");
}

TEST(EmbeddingsEncode, ClientAnswerFloatAndBase64) {
  const std::string up = R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.5]},)"
                         R"({"object":"embedding","index":1,"embedding":[0,3]}],"model":"text-embedding-v4",)"
                         R"("usage":{"prompt_tokens":7,"total_tokens":7}})";
  auto f = embeddings_client_answer(up, "", false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.5]},)"
                R"({"object":"embedding","index":1,"embedding":[0,3]}],"model":"text-embedding-v4",)"
                R"("usage":{"prompt_tokens":7,"total_tokens":7}})");
  auto b = embeddings_client_answer(up, "alias", true);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->find(R"("embedding":"AACAPwAAIMA=")"), std::string::npos) << *b;
  EXPECT_NE(b->find(R"("model":"alias")"), std::string::npos);
  EXPECT_FALSE(embeddings_client_answer("not json", "", false).ok());
}

}  // namespace
}  // namespace gateway
