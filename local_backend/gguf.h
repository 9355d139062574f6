#pragma once
// GGUF (v2/v3) reader over a memory-mapped file with zero-copy views, and a writer.
//
// Every count, length, offset and size read from the file is validated against the
// bytes actually present before it is used; a corrupt or truncated file yields a
// core::Error naming what is wrong and where, never a crash.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "local_backend/tensor_types.h"

namespace local_backend::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little endian
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
const char* value_type_name(ValueType t);
// Size in bytes of a fixed-size scalar type, 0 for string/array/unknown.
size_t scalar_size(ValueType t);

// One metadata value. Scalars are decoded; strings and arrays are views into the mapping.
struct Value {
  ValueType type = ValueType::u8;
  ValueType elem_type = ValueType::u8;  // arrays only
  uint64_t count = 0;                   // arrays only
  uint64_t u = 0;                       // unsigned integers and bool
  int64_t i = 0;                        // signed integers
  double f = 0;                         // floats
  std::string_view str;                 // strings
  const uint8_t* array_data = nullptr;  // arrays of scalars: raw little-endian elements
  std::vector<std::string_view> strings;  // arrays of strings

  bool is_integer() const;
  // Integer value of any integer type (bool included), if representable as int64.
  std::optional<int64_t> as_int() const;
  // Element k of a numeric array, converted.
  int64_t array_int(uint64_t k) const;
  double array_float(uint64_t k) const;
};

struct TensorInfo {
  std::string_view name;
  TensorType type = TensorType::f32;
  int n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is contiguous
  uint64_t offset = 0;                  // relative to the data section
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;        // view into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;
};

class File {
 public:
  // Reads the file at path into private anonymous memory (later changes to the file do not reach
  // the loaded model) and parses it.
  static core::Result<std::unique_ptr<File>> open(const std::string& path);
  // Parses a buffer; the buffer must outlive the File (no copy is made).
  static core::Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string_view, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed getters: an error names the key and the type found when it is absent or mistyped.
  core::Result<std::string_view> get_string(std::string_view key) const;
  core::Result<uint32_t> get_u32(std::string_view key) const;  // any integer type that fits
  core::Result<float> get_f32(std::string_view key) const;     // f32 or f64
  core::Result<bool> get_bool(std::string_view key) const;

 private:
  File() = default;
  core::Status parse_impl();

  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when we own the anonymous mapping holding the file's bytes
  size_t mapping_size_ = 0;
  std::string path_;

  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string_view, Value>> kv_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Builds a GGUF v3 file in memory. Keys and tensors are written in insertion order.
class Writer {
 public:
  explicit Writer(uint32_t alignment = kDefaultAlignment) : alignment_(alignment) {}

  void set_u8(const std::string& k, uint8_t v);
  void set_i8(const std::string& k, int8_t v);
  void set_u16(const std::string& k, uint16_t v);
  void set_i16(const std::string& k, int16_t v);
  void set_u32(const std::string& k, uint32_t v);
  void set_i32(const std::string& k, int32_t v);
  void set_u64(const std::string& k, uint64_t v);
  void set_i64(const std::string& k, int64_t v);
  void set_f32(const std::string& k, float v);
  void set_f64(const std::string& k, double v);
  void set_bool(const std::string& k, bool v);
  void set_string(const std::string& k, std::string_view v);
  void set_string_array(const std::string& k, const std::vector<std::string>& v);
  void set_i32_array(const std::string& k, const std::vector<int32_t>& v);
  void set_f32_array(const std::string& k, const std::vector<float>& v);
  // Raw array of any scalar element type (bytes = count * scalar_size(elem)).
  void set_array_raw(const std::string& k, ValueType elem, uint64_t count, const void* bytes);

  // Adds a tensor; data must hold row_size(type, ne[0]) * ne[1] * ne[2] * ne[3] bytes.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> ne,
                  std::vector<uint8_t> data);

  // Adds a tensor whose bytes are produced when the file is written (large generated models).
  void add_tensor_lazy(const std::string& name, TensorType type, std::vector<int64_t> ne,
                       std::function<std::vector<uint8_t>()> produce);

  std::vector<uint8_t> serialize() const;
  core::Status write_file(const std::string& path) const;

 private:
  void put_key(const std::string& k, ValueType t);
  std::vector<uint8_t> header_bytes() const;
  std::vector<uint8_t> kv_bytes_;
  uint64_t n_kv_ = 0;
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
    std::function<std::vector<uint8_t>()> produce;
    size_t n_bytes = 0;
  };
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_;
};

}  // namespace local_backend::gguf
