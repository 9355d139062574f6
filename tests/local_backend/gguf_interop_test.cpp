// Files written by the test-model writer are read identically by an independent GGUF parser
// (@huggingface/gguf, npm): same metadata, tensor names, shapes, ggml types, offsets and data
// offset. Needs node; skips (with a message) only if node is absent.
#include <gtest/gtest.h>

#include "test_dir.h"
#include <simdjson.h>

#include <cstdlib>
#include <string>

#include "local_backend/gguf.h"
#include "local_backend/test_model.h"

namespace local_backend {
namespace {

const std::string kRefDir = LB_TOKREF_DIR;

struct Case {
  const char* arch;
  const char* type;
};

class GgufInterop : public ::testing::TestWithParam<Case> {};

TEST_P(GgufInterop, IndependentParserAgrees) {
  if (std::system("command -v node >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  ASSERT_EQ(std::system(("test -d '" + kRefDir + "/node_modules/@huggingface/gguf' || (cd '" + kRefDir +
                         "' && npm ci --no-audit --no-fund >/dev/null 2>&1)").c_str()),
            0);
  const Case c = GetParam();
  TestModelSpec spec;
  spec.arch = c.arch;
  spec.type = c.type;
  spec.n_layer = 2;
  const std::string path = test_dir() + "/interop_" + c.arch + "_" + c.type + ".gguf";
  const std::string json_path = path + ".json";
  ASSERT_TRUE(write_test_model(spec, synthetic_vocab(), path).ok());
  ASSERT_EQ(std::system(("cd '" + kRefDir + "' && node gguf_inspect.js '" + path + "' > '" + json_path + "'").c_str()), 0);
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;

  simdjson::ondemand::parser parser;
  auto json = simdjson::padded_string::load(json_path);
  ASSERT_EQ(json.error(), simdjson::SUCCESS);
  auto doc = parser.iterate(json.value_unsafe());
  auto root = doc.get_object();
  EXPECT_EQ(uint64_t(root["data_offset"].get_uint64()), (*f)->data_offset());
  size_t n = 0;
  for (auto t : root["tensors"].get_array()) {
    auto obj = t.get_object();
    const std::string name(std::string_view(obj["name"].get_string()));
    const gguf::TensorInfo* ti = (*f)->find_tensor(name);
    ASSERT_NE(ti, nullptr) << name;
    int d = 0;
    for (auto dim : obj["shape"].get_array()) {
      ASSERT_LT(d, ti->n_dims) << name;
      EXPECT_EQ(int64_t(dim.get_int64()), ti->ne[d]) << name << " dim " << d;
      ++d;
    }
    EXPECT_EQ(d, ti->n_dims) << name;
    EXPECT_EQ(uint64_t(obj["dtype"].get_uint64()), static_cast<uint64_t>(ti->type)) << name;
    EXPECT_EQ(uint64_t(obj["offset"].get_uint64()), ti->offset) << name;
    ++n;
  }
  EXPECT_EQ(n, (*f)->tensors().size());
  size_t keys = 0;
  for (auto field : root["metadata"].get_object()) {
    const std::string key(std::string_view(field.unescaped_key()));
    if (key == "version" || key == "tensor_count" || key == "kv_count") continue;
    const gguf::Value* v = (*f)->find(key);
    ASSERT_NE(v, nullptr) << key;
    ++keys;
    auto val = field.value();
    switch (v->type) {
      case gguf::ValueType::string:
        EXPECT_EQ(std::string_view(val.get_string()), v->str) << key;
        break;
      case gguf::ValueType::u32:
        EXPECT_EQ(uint64_t(val.get_uint64()), v->u) << key;
        break;
      case gguf::ValueType::f32:
        EXPECT_FLOAT_EQ(static_cast<float>(double(val.get_double())), static_cast<float>(v->f)) << key;
        break;
      case gguf::ValueType::boolean:
        EXPECT_EQ(bool(val.get_bool()), v->u != 0) << key;
        break;
      case gguf::ValueType::array: {
        auto o = val.get_object();
        EXPECT_EQ(uint64_t(o["array_length"].get_uint64()), v->count) << key;
        break;
      }
      default:
        break;
    }
  }
  EXPECT_EQ(keys, (*f)->metadata().size());
}

INSTANTIATE_TEST_SUITE_P(Models, GgufInterop,
                         ::testing::Values(Case{"qwen3moe", "q8_0"}, Case{"qwen2moe", "q4_k_m"}, Case{"llama", "f16"},
                                           Case{"qwen2moe", "q5_0"}, Case{"llama", "q4_1"},
                                           Case{"qwen3moe", "bf16"}, Case{"qwen3moe", "q6_k"},
                                           Case{"qwen3moe", "q5_k_m"}),
                         [](const auto& info) { return std::string(info.param.arch) + "_" + info.param.type; });

}  // namespace
}  // namespace local_backend
