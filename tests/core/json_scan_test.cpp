#include "core/json_scan.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/http_wire.h"
#include "core/json_writer.h"

namespace json = core::json;

namespace {
std::vector<std::pair<std::string, std::string>> members(std::string_view obj, bool* ok = nullptr) {
  std::vector<std::pair<std::string, std::string>> out;
  bool r = json::for_each_member(obj, [&](const json::Member& m) { out.emplace_back(m.key, m.value); });
  if (ok) *ok = r;
  return out;
}
}  // namespace

TEST(JsonScan, MembersAreCutVerbatim) {
  bool ok = false;
  auto m = members(R"( { "a" : 1.50e+3 , "b":"x\"}y\\" ,"c":{"d":[1,{"e":"]"}]},"f":[] , "g":null,"h":true } )", &ok);
  ASSERT_TRUE(ok);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0], (std::pair<std::string, std::string>{"a", "1.50e+3"}));  // number exactly as written
  EXPECT_EQ(m[1].second, R"("x\"}y\\")");
  EXPECT_EQ(m[2].second, R"({"d":[1,{"e":"]"}]})");
  EXPECT_EQ(m[3].second, "[]");
  EXPECT_EQ(m[4].second, "null");
  EXPECT_EQ(m[5].second, "true");
}

TEST(JsonScan, EmptyAndNonObjects) {
  bool ok = false;
  EXPECT_TRUE(members("{}", &ok).empty());
  EXPECT_TRUE(ok);
  members("[1,2]", &ok);
  EXPECT_FALSE(ok);
  members("", &ok);
  EXPECT_FALSE(ok);
  std::vector<std::string> el;
  EXPECT_TRUE(json::for_each_element(R"([1, "a,b" ,{"x":[2]}])", [&](std::string_view e) { el.emplace_back(e); }));
  EXPECT_EQ(el, (std::vector<std::string>{"1", R"("a,b")", R"({"x":[2]})"}));
}

TEST(JsonScan, MalformedInputStaysInBounds) {
  // Every prefix of a valid document, and some garbage: never a crash, never success past the end.
  const std::string doc = R"({"model":"m","messages":[{"role":"user","content":"h\u00e9\"llo"}],"n":[1,[2,[3]]]})";
  for (size_t n = 0; n < doc.size(); ++n) {
    std::string prefix = doc.substr(0, n);  // own allocation: ASan sees a read past it
    bool ok = json::for_each_member(prefix, [](const json::Member&) {});
    EXPECT_FALSE(ok) << n;
  }
  for (const char* bad : {R"({"a" 1})", R"({"a":})", R"({"a":1,})", R"({"a":1 "b":2})", R"({"a\)", R"({"a":"\"})"})
    EXPECT_FALSE(json::for_each_member(bad, [](const json::Member&) {})) << bad;
}

TEST(JsonScan, KeysWithEscapesAreDecodedForComparison) {
  EXPECT_TRUE(json::key_is("model", "model"));
  EXPECT_FALSE(json::key_is("models", "model"));
  EXPECT_TRUE(json::key_is(R"(mod\u0065l)", "model"));
  EXPECT_TRUE(json::key_is(R"(a\"b)", "a\"b"));
  EXPECT_FALSE(json::key_is(R"(bad\x)", "badx"));
  std::string out;
  ASSERT_TRUE(json::decode_string(R"("\ud83d\ude00 \u00e9\n")", out));
  EXPECT_EQ(out, "\xF0\x9F\x98\x80 \xC3\xA9\n");
}

TEST(JsonScan, LongStringsCrossTheSimdBlocks) {
  // Quotes and backslashes at every offset relative to the 16-byte blocks.
  for (size_t pad = 0; pad < 40; ++pad) {
    std::string value = "\"" + std::string(pad, 'x') + "\\\"" + std::string(pad, 'y') + "\\\\\"";
    std::string doc = "{\"k\":" + value + ",\"z\":1}";
    auto m = members(doc);
    ASSERT_EQ(m.size(), 2u) << pad;
    EXPECT_EQ(m[0].second, value);
    EXPECT_EQ(m[1].second, "1");
  }
}

TEST(JsonScan, PaddedCopyIsZeroPaddedAndReused) {
  auto a = json::padded_copy("abc", 64);
  EXPECT_EQ(a, "abc");
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(a.data()[3 + i], 0);
  auto b = json::padded_copy(std::string(1000, 'q'), 64);
  EXPECT_EQ(b.size(), 1000u);
  EXPECT_EQ(b.data()[1000], 0);
  // A large body is copied whole; the next ordinary one still comes back intact and padded.
  const std::string big(3 << 20, 'z');
  auto c = json::padded_copy(big, 64);
  EXPECT_EQ(c, big);
  auto d = json::padded_copy("{}", 64);
  EXPECT_EQ(d, "{}");
  EXPECT_EQ(d.data()[2], 0);
}

TEST(JsonWriter, EscapesRunsAndControls) {
  static const char raw[] = "plain text then \"quote\" \\ tab\t nl\n ctl\x01 end";
  const std::string text(raw, sizeof raw - 1);
  std::string s;
  core::append_json_string(s, text);
  EXPECT_EQ(s, R"("plain text then \"quote\" \\ tab\t nl\n ctl\u0001 end")");
  simdjson::dom::parser p;
  std::string doc = "{\"v\":" + s + "}";
  EXPECT_EQ(std::string_view(p.parse(doc)["v"]), text);
}

TEST(HttpWire, HeadersCannotInjectAndFramesAreHex) {
  std::string s;
  core::append_header(s, "X-A:b\r\n", "v1\r\nSet-Cookie: x");
  EXPECT_EQ(s, "X-Ab: v1Set-Cookie: x\r\n");
  // Longer than one 16-byte block, the offending byte in the second block or the tail.
  s.clear();
  core::append_header(s, "X-Gateway-Deployment-Name", "deepseek@global/deepseek-chat:v3\n");
  EXPECT_EQ(s, "X-Gateway-Deployment-Name: deepseek@global/deepseek-chat:v3\r\n");  // ':' kept in values
  s.clear();
  core::append_header(s, "X-0123456789abcdef:ghij", "0123456789abcdef0123456789ab\rcdef");
  EXPECT_EQ(s, "X-0123456789abcdefghij: 0123456789abcdef0123456789abcdef\r\n");
  s.clear();
  core::append_header(s, "X-0123456789abcdefghij", "0123456789abcdef0123456789abcdef");  // clean: copied as is
  EXPECT_EQ(s, "X-0123456789abcdefghij: 0123456789abcdef0123456789abcdef\r\n");
  s.clear();
  core::append_status_line(s, 404);
  EXPECT_EQ(s.rfind("HTTP/1.1 404 ", 0), 0u);
  s.clear();
  core::append_chunk_size(s, 0);
  core::append_chunk_size(s, 255);
  core::append_chunk_size(s, 4096);
  EXPECT_EQ(s, "0\r\nff\r\n1000\r\n");
}

TEST(HttpWire, KnownHeaderNamesStillHaveTheirValuesCheckedAndLengthsAreDecimal) {
  std::string s;
  core::append_known_header(s, "Host", "api.example.com\r\nX-Evil: 1");
  EXPECT_EQ(s, "Host: api.example.comX-Evil: 1\r\n");
  s.clear();
  core::append_content_length(s, 0);
  core::append_content_length(s, 1048576);
  core::append_content_length(s, SIZE_MAX);
  EXPECT_EQ(s, "Content-Length: 0\r\nContent-Length: 1048576\r\nContent-Length: 18446744073709551615\r\n");
}
