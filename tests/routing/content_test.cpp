// Content-aware match conditions: the script and code detectors on samples, each condition in a
// route, compile-time errors with positions, and that a policy without them never scans.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "routing/content.h"
#include "routing/content_match.h"
#include "routing/content_match_parse.h"
#include "test_util.h"

namespace routing {
namespace {

using test::must_compile;

ContentFeatures scan(std::string_view text) {
  ContentScanner s;
  s.feed(text);
  return s.finish();
}

std::vector<core::ChatMessage> user(std::string text) { return {{"user", std::move(text), "", "", ""}}; }

TEST(ScriptShare, CountsLettersPerScript) {
  const auto zh = scan("请把这段话翻译成英文：今天天气很好。");
  EXPECT_GT(zh.letters, 10u);
  EXPECT_DOUBLE_EQ(zh.share(Script::cjk), 1.0);  // full-width punctuation is no letter
  const auto ja = scan("これはペンです。東京へ行きます");
  EXPECT_DOUBLE_EQ(ja.share(Script::cjk), 1.0);
  const auto ko = scan("안녕하세요 세계");
  EXPECT_DOUBLE_EQ(ko.share(Script::cjk), 1.0);
  const auto ru = scan("Привет, мир! hi");
  EXPECT_NEAR(ru.share(Script::cyrillic), 9.0 / 11, 1e-9);
  EXPECT_NEAR(ru.share(Script::latin), 2.0 / 11, 1e-9);
  EXPECT_DOUBLE_EQ(scan("مرحبا بالعالم").share(Script::arabic), 1.0);
  EXPECT_DOUBLE_EQ(scan("नमस्ते दुनिया").share(Script::devanagari), 1.0);  // vowel signs are marks, not letters
  EXPECT_DOUBLE_EQ(scan("Καλημέρα").share(Script::greek), 1.0);
  EXPECT_DOUBLE_EQ(scan("שלום").share(Script::hebrew), 1.0);
  EXPECT_DOUBLE_EQ(scan("สวัสดี").share(Script::thai) > 0.6, true);
  EXPECT_DOUBLE_EQ(scan("Ça été très naïve").share(Script::latin), 1.0);
  const auto mixed = scan("Translate 你好世界 please");
  EXPECT_NEAR(mixed.share(Script::cjk), 4.0 / 19, 1e-9);
}

TEST(ScriptShare, NoLettersAtAll) {
  for (const char* s : {"😀😀🎉👍🏽", "\u0301\u0301\u0308", "1234 5678 !!! ...", ""}) {
    const auto c = scan(s);
    EXPECT_EQ(c.letters, 0u) << s;
    EXPECT_EQ(c.share(Script::cjk), 0.0) << s;
    EXPECT_FALSE(c.code) << s;
  }
}

TEST(ScriptShare, InvalidUtf8IsSkippedNotTrusted) {
  // A lone continuation byte, a cut 3-byte sequence, an overlong lead: skipped a byte at a time.
  const std::string bad = std::string("ab\x80\xE4\xBD") + "\xC0" + "cd";
  const auto c = scan(bad);
  EXPECT_EQ(c.letters, 4u);
  EXPECT_DOUBLE_EQ(c.share(Script::latin), 1.0);
}

TEST(ScriptShare, ScanIsBounded) {
  std::string big(10u << 20, 'a');
  big.replace(0, 3, "中");
  ContentScanner s;
  EXPECT_FALSE(s.feed(big));
  const auto c = s.finish();
  EXPECT_EQ(c.scanned_bytes, kContentScanBytes);
  EXPECT_TRUE(c.truncated);
  EXPECT_EQ(c.letters, kContentScanBytes - 3 + 1);
  // scan_messages: system and user text only, bounded across messages.
  std::vector<core::ChatMessage> msgs{{"system", std::string(40000, 'x'), "", "", ""},
                                      {"assistant", "你好你好你好", "", "", ""},
                                      {"user", std::string(40000, 'y'), "", "", ""}};
  const auto m = scan_messages(msgs);
  EXPECT_TRUE(m.truncated);
  EXPECT_EQ(m.scanned_bytes, kContentScanBytes);
  EXPECT_EQ(m.script_letters[static_cast<size_t>(Script::cjk)], 0u);
}

TEST(CodeDetector, SamplesInSeveralLanguages) {
  const char* samples[] = {
      "Why does this fail?\n```\nprint(x)\n```",
      "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
      "#include <stdio.h>\nint main(void) {\n  printf(\"hi\\n\");\n  return 0;\n}\n",
      "function f(xs) {\n  return xs.map(x => x * 2);\n}\nconsole.log(f([1]));\n",
      "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
      "fn main() {\n    let v = vec![1, 2];\n    println!(\"{:?}\", v);\n}\n",
      "public class A {\n  private int x;\n  public int get() { return x; }\n}\n",
      "SELECT name, count(*)\nFROM users\nWHERE age > 3;\nSELECT 1;\nSELECT 2;\n",
      "这段代码有什么问题？\nconst x = 1;\nlet y = x + 2;\nconsole.log(y);\n",
  };
  for (const char* s : samples) EXPECT_TRUE(scan(s).code) << s;
}

TEST(CodeDetector, ProseIsNotCode) {
  const char* samples[] = {
      "The function of the heart is to pump blood. It has four chambers.\nWrite me a poem about it.",
      "Dear team,\nplease find attached the report; it covers Q3.\nLet me know what you think.\nThanks,\nAnna",
      "Explain the difference between => and -> in one sentence.",
      "Recipe:\n1. Mix flour and water.\n2. Knead for ten minutes.\n3. Bake at 220 C (430 F).\n4. Let it cool.\n5. "
      "Serve.\n",
      "In C++ a class can have private members. Python uses def to define functions. Is that right?",
      "我想了解一下中国的历史，特别是唐朝的文化。\n请详细介绍一下。",
      "He paused; then he spoke.\nShe said nothing.\nThey left at noon.\nThe rain stopped.\nNight fell.\n",
  };
  for (const char* s : samples) EXPECT_FALSE(scan(s).code) << s;
}

TEST(CodeDetector, OneCodeLineInALetterIsNotEnough) {
  std::string text = "Hello,\n";
  for (int i = 0; i < 20; ++i) text += "This is line " + std::to_string(i) + " of a long letter about nothing.\n";
  text += "x = foo();\n";
  EXPECT_FALSE(scan(text).code);
  EXPECT_EQ(scan(text).code_lines, 1u);
}

const char* kPolicy = R"(
routes:
  - name: long
    match: {input_tokens: {min: 128000}}
    candidates: [deepseek/deepseek-flash]
  - name: short
    match: {input_tokens: {max: 100}}
    candidates: [qwen@ap-southeast-1/qwen-flash]
  - name: code
    match: {code: true}
    candidates: [qwen@ap-southeast-1/qwen3-coder-plus]
  - name: cjk
    match: {script: {cjk: {min: 0.3}}}
    candidates: [glm@intl/glm-4.7]
  - name: latin-only
    match: {script: {latin: {min: 0.5, max: 1}, cyrillic: {max: 0.1}}}
    candidates: [kimi@intl/kimi-k2.6]
  - name: tools
    match: {tools: true}
    candidates: [glm@intl/glm-5.2]
  - name: deep
    match: {reasoning_effort: [high, xhigh]}
    candidates: [deepseek/deepseek-v4-pro]
  - name: unset
    match: {reasoning_effort: unset}
    candidates: [deepseek/deepseek-flash]
  - name: rest
    candidates: [deepseek/deepseek-flash]
)";

std::string route_for(const PolicyRouter& router, RequestFeatures f) {
  const Decision d = router.decide(f);
  return d.route ? d.route->name : "none";
}

TEST(ContentMatch, EachConditionRoutes) {
  PolicyRouter router(must_compile(kPolicy));
  auto f = test::request("auto", 1000);
  f.reasoning_effort = "low";
  auto msgs = user("Привет мир, как дела сегодня");
  f.messages = msgs;
  EXPECT_EQ(route_for(router, f), "rest");
  f.est_input_tokens = 200000;
  EXPECT_EQ(route_for(router, f), "long");
  f.est_input_tokens = 100;  // inclusive bound
  EXPECT_EQ(route_for(router, f), "short");
  f.est_input_tokens = 1000;
  auto code = user("def f(x):\n    return x\nprint(f(1))\n");
  f.messages = code;
  EXPECT_EQ(route_for(router, f), "code");
  auto zh = user("请用中文回答 what is AI");
  f.messages = zh;
  EXPECT_EQ(route_for(router, f), "cjk");
  auto en = user("Tell me about Paris");
  f.messages = en;
  EXPECT_EQ(route_for(router, f), "latin-only");
  auto emoji = user("😀🎉");
  f.messages = emoji;
  EXPECT_EQ(route_for(router, f), "rest");  // no letters: no script condition holds
  f.needs_tools = true;
  EXPECT_EQ(route_for(router, f), "tools");
  f.needs_tools = false;
  f.reasoning_effort = "xhigh";
  EXPECT_EQ(route_for(router, f), "deep");
  f.reasoning_effort = "";
  EXPECT_EQ(route_for(router, f), "unset");
}

TEST(ContentMatch, NoScanWithoutScriptOrCode) {
  PolicyRouter plain(must_compile("routes:\n  - {name: r, match: {model: auto, input_tokens: {max: 5000}}, "
                                  "candidates: [deepseek/deepseek-flash]}\n"));
  auto f = test::request("auto");
  auto msgs = user("你好");
  f.messages = msgs;
  EXPECT_FALSE(plain.decide(f).content.has_value());
  // A content route behind one that matched first is never evaluated either.
  PolicyRouter first(must_compile("routes:\n  - {name: a, match: {model: auto}, candidates: [deepseek/deepseek-flash]}\n"
                                  "  - {name: b, match: {code: true}, candidates: [deepseek/deepseek-flash]}\n"));
  EXPECT_FALSE(first.decide(f).content.has_value());
  // A cheap condition that fails skips the scan of its route.
  PolicyRouter cheap(must_compile("routes:\n  - {name: a, match: {tools: true, code: true}, candidates: [deepseek/deepseek-flash]}\n"
                                  "  - {name: b, candidates: [deepseek/deepseek-flash]}\n"));
  EXPECT_FALSE(cheap.decide(f).content.has_value());
  PolicyRouter scans(must_compile("routes:\n  - {name: a, match: {code: true}, candidates: [deepseek/deepseek-flash]}\n"
                                  "  - {name: b, match: {script: {cjk: {min: 0.5}}}, candidates: [deepseek/deepseek-flash]}\n"));
  const Decision d = scans.decide(f);
  ASSERT_TRUE(d.content.has_value());
  EXPECT_EQ(d.route->name, "b");
}

TEST(ContentMatch, ExplainShowsWhichConditionsHeld) {
  PolicyRouter router(must_compile(kPolicy));
  auto f = test::request("auto", 1000);
  auto zh = user("请用中文回答");
  f.messages = zh;
  f.reasoning_effort = "high";
  const std::string j = router.explain_json(f);
  EXPECT_NE(j.find(R"("route":"cjk")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"({"condition":"input_tokens","want":">= 128000","actual":"1000","held":false})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"({"condition":"code","want":"true","actual":"false","held":false})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"({"condition":"script.cjk","want":">= 0.3","actual":"1","held":true})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("reasoning_effort":"high")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("content":{"letters":6,"scripts":{"cjk":1})"), std::string::npos) << j;
  EXPECT_EQ(j.find(R"("route":"latin-only")"), std::string::npos) << "routes after the chosen one are not listed: " << j;
}

std::string compile_errors(const std::string& match) {
  auto r = compile_policy("routes:\n  - name: r\n    match: " + match + "\n    candidates: [deepseek/deepseek-flash]\n",
                          "test.yaml", *builtin_catalog(), test::all_providers());
  return r.ok() ? std::string() : r.error().message;
}

TEST(ContentMatch, CompileErrorsHavePositions) {
  EXPECT_EQ(compile_errors("{script: {kanji: {min: 0.3}}}"),
            "test.yaml:3:22: unknown script 'kanji'; scripts are cjk, latin, cyrillic, greek, arabic, hebrew, devanagari, thai");
  EXPECT_NE(compile_errors("{script: {cjkk: {min: 0.3}}}").find("(did you mean 'cjk'?)"), std::string::npos);
  EXPECT_EQ(compile_errors("{script: {cjk: {min: 1.5}}}"),
            "test.yaml:3:33: match.script.cjk.min must be a number in [0, 1], got '1.5'");
  EXPECT_EQ(compile_errors("{script: {cjk: 0.3}}"),
            "test.yaml:3:27: match.script.cjk must be a mapping with min and/or max, e.g. script: {cjk: {min: 0.3}}");
  EXPECT_NE(compile_errors("{script: {cjk: {mni: 0.3}}}").find("unknown match.script.cjk key 'mni' (did you mean 'min'?)"),
            std::string::npos);
  EXPECT_NE(compile_errors("{script: {cjk: {min: 0.6, max: 0.2}}}").find("min is greater than max"), std::string::npos);
  EXPECT_NE(compile_errors("{script: {cjk: {}}}").find("needs min or max"), std::string::npos);
  EXPECT_NE(compile_errors("{script: cjk}").find("match.script must be a mapping"), std::string::npos);
  EXPECT_EQ(compile_errors("{code: maybe}"), "test.yaml:3:19: match.code must be true or false, got 'maybe'");
  EXPECT_NE(compile_errors("{tools: [1]}").find("match.tools must be true or false"), std::string::npos);
  EXPECT_NE(compile_errors("{input_tokens: {min: -5}}").find("match.input_tokens.min must be a whole number"),
            std::string::npos);
  EXPECT_NE(compile_errors("{input_tokens: {min: 9000, max: 10}}").find("min is greater than max"), std::string::npos);
  EXPECT_NE(compile_errors("{input_tokens: 32000}").find("match.input_tokens must be a mapping"), std::string::npos);
  EXPECT_NE(compile_errors("{reasoning_effort: [low, hihg]}").find("'hihg' is not one of none, minimal, low, medium, "
                                                                   "high, xhigh, default, unset (did you mean 'high'?)"),
            std::string::npos);
  EXPECT_NE(compile_errors("{reasoning_effort: []}").find("needs at least one value"), std::string::npos);
  EXPECT_NE(compile_errors("{reasoning_effort: }").find("needs at least one value"), std::string::npos);
  EXPECT_NE(compile_errors("{reasoning_effort: {high: 1}}").find("is not one of"), std::string::npos);
  EXPECT_NE(compile_errors("{scripts: {cjk: {min: 0.3}}}").find("unknown match key 'scripts' (did you mean 'script'?)"),
            std::string::npos);
  // A duplicate key is refused, not silently resolved one way.
  EXPECT_EQ(compile_errors("{code: true, code: false}"), "test.yaml:3:25: match: duplicate key 'code'");
}

// The editors' JSON Schema knows every content match key and every script name.
TEST(ContentMatch, SchemaHasTheKeys) {
  std::ifstream in(std::string(GW_POLICIES_DIR) + "/schema.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string schema = ss.str();
  const auto match = schema.find("\"match\": {\n      \"type\": \"object\"");
  ASSERT_NE(match, std::string::npos);
  const std::string block = schema.substr(match, schema.find("\n    \"route\": {", match) - match);
  for (const auto& k : content_match_keys()) EXPECT_NE(block.find("\"" + k + "\": {"), std::string::npos) << k;
  for (auto name : script_names()) EXPECT_NE(block.find("\"" + std::string(name) + "\": {"), std::string::npos) << name;
  for (const auto& v : reasoning_effort_values()) EXPECT_NE(block.find("\"" + v + "\""), std::string::npos) << v;
}

}  // namespace
}  // namespace routing
