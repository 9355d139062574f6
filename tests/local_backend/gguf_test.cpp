// GGUF reader/writer: round trip of every value type, and hand-made corrupt/truncated files.
#include "local_backend/gguf.h"

#include <gtest/gtest.h>

#include "test_dir.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace local_backend::gguf {
namespace {

std::vector<uint8_t> sample_file() {
  Writer w;
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", 1ull << 60);
  w.set_i64("t.i64", -(1ll << 60));
  w.set_f32("t.f32", 1.5f);
  w.set_f64("t.f64", -2.25);
  w.set_bool("t.bool", true);
  w.set_string("t.str", "héllo");
  w.set_string_array("t.strs", {"a", "", "ccc"});
  w.set_i32_array("t.i32s", {1, -2, 3});
  w.set_f32_array("t.f32s", {0.5f, 0.25f});
  std::vector<uint8_t> d(4 * 8 * 3);
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(i);
  w.add_tensor("w", TensorType::f32, {8, 3}, d);
  w.add_tensor("v", TensorType::f16, {5}, std::vector<uint8_t>(10, 7));
  return w.serialize();
}

// Byte-level builder for hand-made headers.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T>
  Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(kMagic).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Bytes& pad_to(size_t align) {
    b.resize(b.size() + (align - b.size() % align) % align, 0);
    return *this;
  }
};

std::string parse_error(const std::vector<uint8_t>& b) {
  auto r = File::parse(b.data(), b.size());
  if (r.ok()) return "";
  return r.error().message;
}

TEST(Gguf, RoundTripsEveryValueType) {
  const auto bytes = sample_file();
  auto r = File::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const File& f = **r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.find("t.u8")->u, 200u);
  EXPECT_EQ(f.find("t.i8")->i, -100);
  EXPECT_EQ(f.find("t.u16")->u, 60000u);
  EXPECT_EQ(f.find("t.i16")->i, -30000);
  EXPECT_EQ(f.find("t.u32")->u, 4000000000u);
  EXPECT_EQ(f.find("t.i32")->i, -2000000000);
  EXPECT_EQ(f.find("t.u64")->u, 1ull << 60);
  EXPECT_EQ(f.find("t.i64")->i, -(1ll << 60));
  EXPECT_FLOAT_EQ(static_cast<float>(f.find("t.f32")->f), 1.5f);
  EXPECT_DOUBLE_EQ(f.find("t.f64")->f, -2.25);
  EXPECT_EQ(f.find("t.bool")->u, 1u);
  EXPECT_EQ(*f.get_string("t.str"), "héllo");
  const Value* strs = f.find("t.strs");
  ASSERT_EQ(strs->strings.size(), 3u);
  EXPECT_EQ(strs->strings[0], "a");
  EXPECT_EQ(strs->strings[1], "");
  EXPECT_EQ(strs->strings[2], "ccc");
  const Value* i32s = f.find("t.i32s");
  EXPECT_EQ(i32s->elem_type, ValueType::i32);
  EXPECT_EQ(i32s->count, 3u);
  EXPECT_EQ(i32s->array_int(1), -2);
  EXPECT_DOUBLE_EQ(f.find("t.f32s")->array_float(1), 0.25);
  EXPECT_EQ(*f.get_u32("t.u32"), 4000000000u);
  EXPECT_FALSE(f.get_u32("t.i32").ok());  // negative
  EXPECT_FALSE(f.get_u32("t.str").ok());
  EXPECT_FALSE(f.get_string("missing").ok());
  EXPECT_NE(f.get_string("missing").error().message.find("missing"), std::string::npos);

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* w = f.find_tensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->ne[0], 8);
  EXPECT_EQ(w->ne[1], 3);
  EXPECT_EQ(w->n_bytes, 96u);
  EXPECT_EQ(w->data[5], 5);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  const TensorInfo* v = f.find_tensor("v");
  EXPECT_EQ(v->offset, 96u);  // 96 is already 32-aligned
  EXPECT_EQ(v->data[0], 7);
}

TEST(Gguf, OpensFileIntoMemory) {
  const std::string path = test_dir() + "/gguf_test_open.gguf";
  Writer w;
  w.set_string("general.architecture", "x");
  w.add_tensor("t", TensorType::f32, {4}, std::vector<uint8_t>(16, 1));
  ASSERT_TRUE(w.write_file(path).ok());
  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->find_tensor("t")->data[3], 1);
  std::remove(path.c_str());
  auto missing = File::open(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
}

// The loaded bytes are the process's own: truncating or rewriting the file in place afterwards
// changes nothing the model reads (a file-backed mapping would fault with SIGBUS on truncation).
TEST(Gguf, OpenedFileSurvivesTruncationAndRewrite) {
  const std::string path = test_dir() + "/gguf_test_truncate.gguf";
  Writer w;
  w.set_string("general.architecture", "x");
  w.add_tensor("t", TensorType::f32, {4096}, std::vector<uint8_t>(16384, 7));
  ASSERT_TRUE(w.write_file(path).ok());
  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  const TensorInfo* t = (*r)->find_tensor("t");
  ASSERT_NE(t, nullptr);
  long sum = 0;
  for (size_t i = 0; i < t->n_bytes; ++i) sum += t->data[i];
  EXPECT_EQ(sum, 7L * 16384);
  FILE* fp = std::fopen(path.c_str(), "wb");
  ASSERT_NE(fp, nullptr);
  const std::vector<uint8_t> other(1 << 16, 9);
  ASSERT_EQ(std::fwrite(other.data(), 1, other.size(), fp), other.size());
  std::fclose(fp);
  EXPECT_EQ(t->data[100], 7);
  EXPECT_EQ((*r)->get_string("general.architecture").value(), "x");
  std::remove(path.c_str());
}

TEST(Gguf, EveryTruncationIsAnError) {
  const auto bytes = sample_file();
  // Every strict prefix that cuts into the header or tensor data must fail cleanly.
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    auto r = File::parse(cut.data(), cut.size());
    // The last tensor's trailing padding is not needed, so only prefixes shorter than
    // the end of the last tensor's bytes must fail.
    const size_t needed = bytes.size() - (32 - 10 % 32) % 32;  // v: 10 bytes padded to 32
    if (n < needed) {
      EXPECT_FALSE(r.ok()) << "prefix " << n;
      if (!r.ok()) {
        EXPECT_EQ(r.error().message.rfind("GGUF: ", 0), 0u);
      }
    }
  }
}

TEST(Gguf, EveryByteFlipParsesOrFailsCleanly) {
  const auto bytes = sample_file();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t x : {0x01, 0x80, 0xFF}) {
      auto b = bytes;
      b[i] ^= x;
      auto r = File::parse(b.data(), b.size());
      if (r.ok()) {
        for (const auto& t : (*r)->tensors()) {
          ASSERT_LE(t.data + t.n_bytes, b.data() + b.size());
          ASSERT_GE(t.data, b.data());
        }
      }
    }
  }
}

TEST(Gguf, BadMagicAndVersion) {
  Bytes a;
  a.put<uint32_t>(0x12345678).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(0);
  EXPECT_NE(parse_error(a.b).find("bad magic"), std::string::npos);
  Bytes b;
  b.header(0, 0, 7);
  EXPECT_NE(parse_error(b.b).find("unsupported version 7"), std::string::npos);
  Bytes c;
  c.header(0, 0, 1);
  EXPECT_NE(parse_error(c.b).find("unsupported version 1"), std::string::npos);
  EXPECT_NE(parse_error({}).find("truncated"), std::string::npos);
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocation) {
  Bytes a;
  a.header(0, 1ull << 60);
  EXPECT_NE(parse_error(a.b).find("metadata count"), std::string::npos);
  Bytes b;
  b.header(~0ull, 0);
  EXPECT_NE(parse_error(b.b).find("tensor count"), std::string::npos);
}

TEST(Gguf, StringLengthPastEnd) {
  Bytes a;
  a.header(0, 1).put<uint64_t>(1000).put<uint32_t>(0).put<uint64_t>(0).put<uint64_t>(0);
  EXPECT_NE(parse_error(a.b).find("string length 1000"), std::string::npos);
  Bytes b;
  b.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(~0ull);
  EXPECT_NE(parse_error(b.b).find("key 'k'"), std::string::npos);
}

TEST(Gguf, BadValueTypes) {
  Bytes a;
  a.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
  EXPECT_NE(parse_error(a.b).find("unknown value type 13"), std::string::npos);
  Bytes b;
  b.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
  EXPECT_NE(parse_error(b.b).find("nested array"), std::string::npos);
  Bytes c;
  c.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 40).put<uint32_t>(1);
  EXPECT_NE(parse_error(c.b).find("array of"), std::string::npos);
  Bytes d;
  d.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
  EXPECT_NE(parse_error(d.b).find("bool value 2"), std::string::npos);
  Bytes e;
  e.header(0, 2).str("k").put<uint32_t>(0).put<uint8_t>(1).str("k").put<uint32_t>(0).put<uint8_t>(1);
  EXPECT_NE(parse_error(e.b).find("duplicate metadata key 'k'"), std::string::npos);
  Bytes f;
  f.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(3).str("x").put<uint64_t>(100).put<uint64_t>(0).put<uint64_t>(0);
  EXPECT_NE(parse_error(f.b).find("element 1"), std::string::npos);
}

TEST(Gguf, BadAlignment) {
  Bytes a;
  a.header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
  EXPECT_NE(parse_error(a.b).find("not a power of two"), std::string::npos);
  Bytes b;
  b.header(0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  EXPECT_NE(parse_error(b.b).find("must be u32"), std::string::npos);
}

Bytes one_tensor(uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
  Bytes b;
  b.header(1, 0).str("t").put<uint32_t>(n_dims);
  for (uint64_t d : ne) b.put<uint64_t>(d);
  b.put<uint32_t>(type).put<uint64_t>(offset).pad_to(32);
  b.b.resize(b.b.size() + data, 0);
  return b;
}

TEST(Gguf, BadTensorInfos) {
  EXPECT_EQ(parse_error(one_tensor(2, {4, 2}, 0, 0, 32).b), "");
  EXPECT_NE(parse_error(one_tensor(0, {}, 0, 0, 32).b).find("0 dimensions"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(5, {1, 1, 1, 1, 1}, 0, 0, 32).b).find("5 dimensions"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {0}, 0, 0, 32).b).find("out of range"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {4}, 99, 0, 32).b).find("unknown ggml type id 99"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {4}, 0, 7, 32).b).find("not a multiple of the alignment"),
            std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {33}, 8, 0, 64).b).find("block size 32"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 4}, 0, 0, 32).b).find("truncated file"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {4}, 0, 1ull << 62, 32).b).find("data section"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(4, {1u << 30, 1u << 30, 1u << 30, 1u << 30}, 0, 0, 32).b).find("overflows"),
            std::string::npos);
  Bytes dup;
  dup.header(2, 0);
  for (int i = 0; i < 2; ++i) dup.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
  dup.pad_to(32);
  dup.b.resize(dup.b.size() + 32);
  EXPECT_NE(parse_error(dup.b).find("duplicate tensor name 't'"), std::string::npos);
}

}  // namespace
}  // namespace local_backend::gguf
