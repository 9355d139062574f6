// The OpenAI /embeddings wire format of the providers (providers/embeddings_wire.h): sub-batches,
// re-assembly by index, usage.
#include "providers/embeddings_wire.h"

#include <gtest/gtest.h>

namespace providers {
namespace {

core::EmbeddingRequest rows(size_t n) {
  core::EmbeddingRequest r;
  for (size_t i = 0; i < n; ++i) r.rows.push_back("\"r" + std::to_string(i) + "\"");
  return r;
}

TEST(EmbeddingsWire, SplitBatches) {
  using V = std::vector<std::pair<size_t, size_t>>;
  EXPECT_EQ(split_batches(25, 10), (V{{0, 10}, {10, 20}, {20, 25}}));
  EXPECT_EQ(split_batches(10, 10), (V{{0, 10}}));
  EXPECT_EQ(split_batches(1, 10), (V{{0, 1}}));
  EXPECT_EQ(split_batches(7, 0), (V{{0, 7}}));
  EXPECT_TRUE(split_batches(0, 10).empty());
}

TEST(EmbeddingsWire, BodyOfASubBatch) {
  auto r = rows(5);
  r.rows[3] = "[1,2]";
  r.dimensions = 256;
  r.user = "u\"x";
  EXPECT_EQ(embeddings_body(r, 2, 4, "text-embedding-v4"),
            R"({"model":"text-embedding-v4","input":["r2",[1,2]],"encoding_format":"float","dimensions":256,"user":"u\"x"})");
  r.dimensions.reset();
  r.user.clear();
  EXPECT_EQ(embeddings_body(r, 0, 1, "m"), R"({"model":"m","input":["r0"],"encoding_format":"float"})");
}

TEST(EmbeddingsWire, AnswerReadByIndexNotPosition) {
  auto b = parse_embeddings_answer(
      R"({"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5, 2]},)"
      R"({"object":"embedding","index":0,"embedding":[-1e-3]}],"usage":{"prompt_tokens":9,"total_tokens":9}})",
      2, "qwen");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->vectors, (std::vector<std::string>{"[-0.001]", "[0.5,2]"}));  // minified: numbers re-printed
  EXPECT_TRUE(b->usage.present);
  EXPECT_EQ(b->usage.prompt_tokens, 9);
  EXPECT_EQ(b->usage.completion_tokens, 0);
}

TEST(EmbeddingsWire, UsageVariants) {
  const std::string data = R"("data":[{"index":0,"embedding":[1]}])";
  auto glm = parse_embeddings_answer("{" + data + R"(,"usage":{"completion_tokens":0,"prompt_tokens":4,"total_tokens":4}})", 1, "glm");
  ASSERT_TRUE(glm.ok());
  EXPECT_EQ(glm->usage.prompt_tokens, 4);
  auto none = parse_embeddings_answer("{" + data + "}", 1, "x");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->usage.present);
  auto total_only = parse_embeddings_answer("{" + data + R"(,"usage":{"total_tokens":6}})", 1, "x");
  EXPECT_EQ(total_only->usage.prompt_tokens, 6);
  auto bad = parse_embeddings_answer("{" + data + R"(,"usage":{"prompt_tokens":-3}})", 1, "x");
  EXPECT_TRUE(bad->usage.malformed);
}

TEST(EmbeddingsWire, BrokenAnswersAreTheUpstreamsFault) {
  const char* cases[] = {
      "<html>",
      R"({"data":{}})",
      R"({"data":[{"index":0,"embedding":[1]}]})",                                       // 1 of 2
      R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})",           // repeated
      R"({"data":[{"index":0,"embedding":[1]},{"index":2,"embedding":[2]}]})",           // out of range
      R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":"AAAA"}]})",        // base64 not asked
      R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[]}]})",            // empty
      R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":["x"]}]})",         // not numbers
      R"({"data":[{"index":0,"embedding":[1]},{"embedding":[2]}]})",                      // no index
      R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]},{"index":2,"embedding":[3]}]})",
  };
  for (const char* c : cases) {
    auto r = parse_embeddings_answer(c, 2, "qwen");
    ASSERT_FALSE(r.ok()) << c;
    EXPECT_EQ(r.error().kind, core::ErrorKind::server_error) << c;
    EXPECT_EQ(r.error().source, core::ErrorSource::upstream) << c;
  }
}

TEST(EmbeddingsWire, ReassembledAnswer) {
  core::Usage u;
  u.present = true;
  u.prompt_tokens = 12;
  EXPECT_EQ(embeddings_answer({"[1]", "[2,3]"}, "m", u),
            R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[1]},)"
            R"({"object":"embedding","index":1,"embedding":[2,3]}],"model":"m","usage":{"prompt_tokens":12,"total_tokens":12}})");
}

}  // namespace
}  // namespace providers
