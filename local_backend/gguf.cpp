#include "local_backend/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

namespace local_backend::gguf {
namespace {

using core::ErrorKind;

core::Error gguf_error(std::string msg) {
  return core::make_error(ErrorKind::internal, "GGUF: " + std::move(msg), core::ErrorSource::local,
                          "gguf_invalid");
}

// Bounds-checked little-endian reader. Every read checks the remaining length first.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : base_(p), size_(n) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <class T>
  bool read(T* out, const char* what, std::string* err) {
    if (remaining() < sizeof(T)) {
      *err = std::string("truncated file: need ") + std::to_string(sizeof(T)) + " bytes for " +
             what + " at offset " + std::to_string(pos_) + ", " + std::to_string(remaining()) +
             " left";
      return false;
    }
    std::memcpy(out, base_ + pos_, sizeof(T));  // host is little endian (x86-64, aarch64)
    pos_ += sizeof(T);
    return true;
  }

  bool read_string(std::string_view* out, const char* what, std::string* err) {
    uint64_t len = 0;
    if (!read(&len, what, err)) return false;
    if (len > remaining()) {
      *err = std::string("string length ") + std::to_string(len) + " of " + what + " at offset " +
             std::to_string(pos_ - 8) + " exceeds the " + std::to_string(remaining()) +
             " bytes left";
      return false;
    }
    *out = std::string_view(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return true;
  }

  bool skip(size_t n, const char* what, std::string* err) {
    if (n > remaining()) {
      *err = std::string("truncated file: ") + what + " needs " + std::to_string(n) +
             " bytes at offset " + std::to_string(pos_) + ", " + std::to_string(remaining()) +
             " left";
      return false;
    }
    pos_ += n;
    return true;
  }
  const uint8_t* here() const { return base_ + pos_; }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::f64); }

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void decode_scalar(ValueType t, const uint8_t* p, Value* v) {
  switch (t) {
    case ValueType::u8: v->u = load<uint8_t>(p); break;
    case ValueType::i8: v->i = load<int8_t>(p); break;
    case ValueType::u16: v->u = load<uint16_t>(p); break;
    case ValueType::i16: v->i = load<int16_t>(p); break;
    case ValueType::u32: v->u = load<uint32_t>(p); break;
    case ValueType::i32: v->i = load<int32_t>(p); break;
    case ValueType::u64: v->u = load<uint64_t>(p); break;
    case ValueType::i64: v->i = load<int64_t>(p); break;
    case ValueType::f32: v->f = load<float>(p); break;
    case ValueType::f64: v->f = load<double>(p); break;
    case ValueType::boolean: v->u = load<uint8_t>(p); break;
    default: break;
  }
}

bool is_unsigned(ValueType t) {
  return t == ValueType::u8 || t == ValueType::u16 || t == ValueType::u32 ||
         t == ValueType::u64 || t == ValueType::boolean;
}
bool is_signed(ValueType t) {
  return t == ValueType::i8 || t == ValueType::i16 || t == ValueType::i32 || t == ValueType::i64;
}

}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::u8: return "u8";
    case ValueType::i8: return "i8";
    case ValueType::u16: return "u16";
    case ValueType::i16: return "i16";
    case ValueType::u32: return "u32";
    case ValueType::i32: return "i32";
    case ValueType::f32: return "f32";
    case ValueType::boolean: return "bool";
    case ValueType::string: return "string";
    case ValueType::array: return "array";
    case ValueType::u64: return "u64";
    case ValueType::i64: return "i64";
    case ValueType::f64: return "f64";
  }
  return "unknown";
}

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    default: return 0;
  }
}

bool Value::is_integer() const { return is_unsigned(type) || is_signed(type); }

std::optional<int64_t> Value::as_int() const {
  if (is_unsigned(type)) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (is_signed(type)) return i;
  return std::nullopt;
}

int64_t Value::array_int(uint64_t k) const {
  if (type != ValueType::array || k >= count || !array_data) return 0;
  Value tmp;
  tmp.type = elem_type;
  decode_scalar(elem_type, array_data + k * scalar_size(elem_type), &tmp);
  if (elem_type == ValueType::f32 || elem_type == ValueType::f64) return static_cast<int64_t>(tmp.f);
  auto v = tmp.as_int();
  return v ? *v : 0;
}

double Value::array_float(uint64_t k) const {
  if (type != ValueType::array || k >= count || !array_data) return 0;
  Value tmp;
  tmp.type = elem_type;
  decode_scalar(elem_type, array_data + k * scalar_size(elem_type), &tmp);
  if (elem_type == ValueType::f32 || elem_type == ValueType::f64) return tmp.f;
  if (is_signed(elem_type)) return static_cast<double>(tmp.i);
  return static_cast<double>(tmp.u);
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

File::~File() {
  if (mapping_) munmap(mapping_, mapping_size_);
}

namespace {

// Reads exactly size bytes from the start of fd; an error text when the file ends early (it was
// truncated while being read) or read fails.
std::string read_whole(int fd, uint8_t* out, size_t size) {
  size_t done = 0;
  while (done < size) {
    const size_t want = std::min<size_t>(size - done, size_t(1) << 24);
    const ssize_t n = ::pread(fd, out + done, want, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::strerror(errno);
    }
    if (n == 0)
      return "the file ended at byte " + std::to_string(done) + " of " + std::to_string(size) +
             " (changed while it was being read)";
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

core::Result<std::unique_ptr<File>> File::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return core::make_error(ErrorKind::internal,
                            "GGUF: cannot open '" + path + "': " + std::strerror(errno),
                            core::ErrorSource::local, "gguf_open");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return core::make_error(ErrorKind::internal, "GGUF: cannot stat '" + path + "': " + std::strerror(e),
                            core::ErrorSource::local, "gguf_open");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return gguf_error("'" + path + "' is not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return gguf_error("'" + path + "' is empty");
  }
  // The weights are copied into anonymous memory, not mapped from the file: a file-backed mapping
  // (MAP_SHARED or MAP_PRIVATE alike, for pages not yet written) faults with SIGBUS, killing the
  // whole gateway, once the file is truncated under it, and shows another model's bytes when the
  // file is rewritten in place. The copy costs resident memory equal to the file size.
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    ::close(fd);
    return core::make_error(ErrorKind::internal,
                            "GGUF: cannot allocate " + std::to_string(size) + " bytes for '" + path + "': " + std::strerror(e),
                            core::ErrorSource::local, "gguf_open");
  }
  std::string read_err = read_whole(fd, static_cast<uint8_t*>(m), size);
  ::close(fd);
  if (!read_err.empty()) {
    munmap(m, size);
    return core::make_error(ErrorKind::internal, "GGUF: cannot read '" + path + "': " + read_err,
                            core::ErrorSource::local, "gguf_open");
  }
  // Read-only from here: a stray write into the weights faults instead of corrupting them.
  mprotect(m, size, PROT_READ);
  std::unique_ptr<File> f(new File());
  f->mapping_ = m;
  f->mapping_size_ = size;
  f->base_ = static_cast<const uint8_t*>(m);
  f->size_ = size;
  f->path_ = path;
  auto st2 = f->parse_impl();
  if (!st2.ok()) {
    core::Error err = st2.error();
    err.message = err.message + " (file '" + path + "')";
    return err;
  }
  return f;
}

core::Result<std::unique_ptr<File>> File::parse(const uint8_t* data, size_t size) {
  std::unique_ptr<File> f(new File());
  f->base_ = data;
  f->size_ = size;
  auto st = f->parse_impl();
  if (!st.ok()) return st.error();
  return f;
}

core::Status File::parse_impl() {
  Cursor c(base_, size_);
  std::string err;
  uint32_t magic = 0;
  if (!c.read(&magic, "magic", &err)) return gguf_error(err);
  if (magic != kMagic) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "bad magic 0x%08x (expected 'GGUF')", magic);
    return gguf_error(buf);
  }
  if (!c.read(&version_, "version", &err)) return gguf_error(err);
  if (version_ != 2 && version_ != 3) {
    return gguf_error("unsupported version " + std::to_string(version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!c.read(&n_tensors, "tensor count", &err)) return gguf_error(err);
  if (!c.read(&n_kv, "metadata count", &err)) return gguf_error(err);
  // Each KV needs at least 8 (key len) + 4 (type) + 1 bytes; each tensor info at least 8+4+4+8.
  if (n_kv > c.remaining() / 13) {
    return gguf_error("metadata count " + std::to_string(n_kv) + " cannot fit in " +
                      std::to_string(c.remaining()) + " bytes");
  }
  if (n_tensors > c.remaining() / 24) {
    return gguf_error("tensor count " + std::to_string(n_tensors) + " cannot fit in " +
                      std::to_string(c.remaining()) + " bytes");
  }

  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string_view key;
    if (!c.read_string(&key, "metadata key", &err)) {
      return gguf_error("metadata entry " + std::to_string(k) + ": " + err);
    }
    if (key.empty()) return gguf_error("metadata entry " + std::to_string(k) + " has an empty key");
    const std::string key_s(key);
    uint32_t type_raw = 0;
    if (!c.read(&type_raw, "value type", &err)) return gguf_error("key '" + key_s + "': " + err);
    if (!valid_value_type(type_raw)) {
      return gguf_error("key '" + key_s + "' has unknown value type " + std::to_string(type_raw));
    }
    Value v;
    v.type = static_cast<ValueType>(type_raw);
    if (v.type == ValueType::string) {
      if (!c.read_string(&v.str, "string value", &err)) return gguf_error("key '" + key_s + "': " + err);
    } else if (v.type == ValueType::array) {
      uint32_t et = 0;
      if (!c.read(&et, "array element type", &err)) return gguf_error("key '" + key_s + "': " + err);
      if (!valid_value_type(et)) {
        return gguf_error("key '" + key_s + "' is an array of unknown element type " + std::to_string(et));
      }
      v.elem_type = static_cast<ValueType>(et);
      if (v.elem_type == ValueType::array) {
        return gguf_error("key '" + key_s + "' is a nested array, which is not supported");
      }
      if (!c.read(&v.count, "array length", &err)) return gguf_error("key '" + key_s + "': " + err);
      if (v.elem_type == ValueType::string) {
        if (v.count > c.remaining() / 8) {
          return gguf_error("key '" + key_s + "': string array length " + std::to_string(v.count) +
                            " cannot fit in the " + std::to_string(c.remaining()) + " bytes left");
        }
        v.strings.reserve(v.count);
        for (uint64_t j = 0; j < v.count; ++j) {
          std::string_view s;
          if (!c.read_string(&s, "array string", &err)) {
            return gguf_error("key '" + key_s + "' element " + std::to_string(j) + ": " + err);
          }
          v.strings.push_back(s);
        }
      } else {
        const size_t es = scalar_size(v.elem_type);
        if (v.count > c.remaining() / es) {
          return gguf_error("key '" + key_s + "': array of " + std::to_string(v.count) + " " +
                            value_type_name(v.elem_type) + " exceeds the " +
                            std::to_string(c.remaining()) + " bytes left");
        }
        v.array_data = c.here();
        c.skip(v.count * es, "array", &err);
      }
    } else {
      const size_t es = scalar_size(v.type);
      if (c.remaining() < es) {
        return gguf_error("key '" + key_s + "': truncated " + value_type_name(v.type) + " value");
      }
      decode_scalar(v.type, c.here(), &v);
      c.skip(es, "value", &err);
      if (v.type == ValueType::boolean && v.u > 1) {
        return gguf_error("key '" + key_s + "': bool value " + std::to_string(v.u) + " is not 0 or 1");
      }
    }
    if (kv_index_.count(key)) return gguf_error("duplicate metadata key '" + key_s + "'");
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(key, std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::u32) {
      return gguf_error(std::string("general.alignment must be u32, found ") + value_type_name(a->type));
    }
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
      return gguf_error("general.alignment " + std::to_string(a->u) + " is not a power of two");
    }
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t t = 0; t < n_tensors; ++t) {
    TensorInfo ti;
    if (!c.read_string(&ti.name, "tensor name", &err)) {
      return gguf_error("tensor info " + std::to_string(t) + ": " + err);
    }
    const std::string name(ti.name);
    const std::string where = "tensor '" + name + "'";
    if (ti.name.empty()) return gguf_error("tensor info " + std::to_string(t) + " has an empty name");
    if (ti.name.size() > 255) return gguf_error(where + ": name longer than 255 bytes");
    uint32_t n_dims = 0;
    if (!c.read(&n_dims, "n_dims", &err)) return gguf_error(where + ": " + err);
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims)) {
      return gguf_error(where + " has " + std::to_string(n_dims) + " dimensions (1.." +
                        std::to_string(kMaxDims) + " allowed)");
    }
    ti.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      if (!c.read(&ne, "dimension", &err)) return gguf_error(where + ": " + err);
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) * 16) {
        return gguf_error(where + " dimension " + std::to_string(d) + " = " + std::to_string(ne) +
                          " is out of range");
      }
      ti.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t type_raw = 0;
    if (!c.read(&type_raw, "tensor type", &err)) return gguf_error(where + ": " + err);
    const TypeTraits& tr = type_traits(type_raw);
    if (!tr.name) return gguf_error(where + " has unknown ggml type id " + std::to_string(type_raw));
    ti.type = static_cast<TensorType>(type_raw);
    if (!c.read(&ti.offset, "tensor offset", &err)) return gguf_error(where + ": " + err);
    // Overflow-safe element count.
    uint64_t n = 1;
    for (int d = 0; d < kMaxDims; ++d) {
      const uint64_t ne = static_cast<uint64_t>(ti.ne[d]);
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
        return gguf_error(where + " element count overflows");
      }
      n *= ne;
    }
    if (ti.ne[0] % tr.block_size != 0) {
      return gguf_error(where + " row length " + std::to_string(ti.ne[0]) +
                        " is not a multiple of the " + tr.name + " block size " +
                        std::to_string(tr.block_size));
    }
    ti.n_bytes = static_cast<size_t>(n / tr.block_size) * tr.type_size;
    if (ti.offset % alignment_ != 0) {
      return gguf_error(where + " offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
                        std::to_string(alignment_));
    }
    if (tensor_index_.count(ti.name)) return gguf_error("duplicate tensor name '" + name + "'");
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(ti);
  }

  // The data section starts at the aligned end of the header.
  const size_t header_end = c.pos();
  const size_t pad = (alignment_ - header_end % alignment_) % alignment_;
  if (n_tensors > 0 && header_end + pad > size_) {
    return gguf_error("truncated file: data section would start at " + std::to_string(header_end + pad) +
                      " but the file has " + std::to_string(size_) + " bytes");
  }
  data_offset_ = header_end + pad;
  const size_t data_size = size_ >= data_offset_ ? size_ - data_offset_ : 0;
  for (auto& ti : tensors_) {
    if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset) {
      return gguf_error("tensor '" + std::string(ti.name) + "' " + type_name(ti.type) + " " +
                        ti.shape_string() + " needs bytes [" + std::to_string(ti.offset) + ", " +
                        std::to_string(ti.offset + ti.n_bytes) + ") of the data section, which has " +
                        std::to_string(data_size) + " bytes (truncated file?)");
    }
    ti.data = base_ + data_offset_ + ti.offset;
  }
  return core::ok_status();
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

core::Result<std::string_view> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return gguf_error("missing required key '" + std::string(key) + "'");
  if (v->type != ValueType::string) {
    return gguf_error("key '" + std::string(key) + "' must be a string, found " + value_type_name(v->type));
  }
  return v->str;
}

core::Result<uint32_t> File::get_u32(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return gguf_error("missing required key '" + std::string(key) + "'");
  auto i = v->as_int();
  if (!v->is_integer() || v->type == ValueType::boolean) {
    return gguf_error("key '" + std::string(key) + "' must be an unsigned integer, found " +
                      value_type_name(v->type));
  }
  if (!i || *i < 0 || *i > std::numeric_limits<uint32_t>::max()) {
    return gguf_error("key '" + std::string(key) + "' value is out of range for u32");
  }
  return static_cast<uint32_t>(*i);
}

core::Result<float> File::get_f32(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return gguf_error("missing required key '" + std::string(key) + "'");
  if (v->type != ValueType::f32 && v->type != ValueType::f64) {
    return gguf_error("key '" + std::string(key) + "' must be f32, found " + value_type_name(v->type));
  }
  return static_cast<float>(v->f);
}

core::Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return gguf_error("missing required key '" + std::string(key) + "'");
  if (v->type != ValueType::boolean) {
    return gguf_error("key '" + std::string(key) + "' must be bool, found " + value_type_name(v->type));
  }
  return v->u != 0;
}

// ---------------------------------------------------------------- writer

namespace {
template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
void put_str(std::vector<uint8_t>& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
}  // namespace

void Writer::put_key(const std::string& k, ValueType t) {
  put_str(kv_bytes_, k);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(t));
  ++n_kv_;
}

void Writer::set_u8(const std::string& k, uint8_t v) { put_key(k, ValueType::u8); put(kv_bytes_, v); }
void Writer::set_i8(const std::string& k, int8_t v) { put_key(k, ValueType::i8); put(kv_bytes_, v); }
void Writer::set_u16(const std::string& k, uint16_t v) { put_key(k, ValueType::u16); put(kv_bytes_, v); }
void Writer::set_i16(const std::string& k, int16_t v) { put_key(k, ValueType::i16); put(kv_bytes_, v); }
void Writer::set_u32(const std::string& k, uint32_t v) { put_key(k, ValueType::u32); put(kv_bytes_, v); }
void Writer::set_i32(const std::string& k, int32_t v) { put_key(k, ValueType::i32); put(kv_bytes_, v); }
void Writer::set_u64(const std::string& k, uint64_t v) { put_key(k, ValueType::u64); put(kv_bytes_, v); }
void Writer::set_i64(const std::string& k, int64_t v) { put_key(k, ValueType::i64); put(kv_bytes_, v); }
void Writer::set_f32(const std::string& k, float v) { put_key(k, ValueType::f32); put(kv_bytes_, v); }
void Writer::set_f64(const std::string& k, double v) { put_key(k, ValueType::f64); put(kv_bytes_, v); }
void Writer::set_bool(const std::string& k, bool v) {
  put_key(k, ValueType::boolean);
  put<uint8_t>(kv_bytes_, v ? 1 : 0);
}
void Writer::set_string(const std::string& k, std::string_view v) {
  put_key(k, ValueType::string);
  put_str(kv_bytes_, v);
}
void Writer::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  put_key(k, ValueType::array);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::string));
  put<uint64_t>(kv_bytes_, v.size());
  for (const auto& s : v) put_str(kv_bytes_, s);
}
void Writer::set_array_raw(const std::string& k, ValueType elem, uint64_t count, const void* bytes) {
  put_key(k, ValueType::array);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(elem));
  put<uint64_t>(kv_bytes_, count);
  const auto* p = static_cast<const uint8_t*>(bytes);
  kv_bytes_.insert(kv_bytes_.end(), p, p + count * scalar_size(elem));
}
void Writer::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  set_array_raw(k, ValueType::i32, v.size(), v.data());
}
void Writer::set_f32_array(const std::string& k, const std::vector<float>& v) {
  set_array_raw(k, ValueType::f32, v.size(), v.data());
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> ne,
                        std::vector<uint8_t> data) {
  const size_t n = data.size();
  tensors_.push_back({name, type, std::move(ne), std::move(data), nullptr, n});
}

void Writer::add_tensor_lazy(const std::string& name, TensorType type, std::vector<int64_t> ne,
                             std::function<std::vector<uint8_t>()> produce) {
  size_t n = row_size(type, ne.empty() ? 0 : ne[0]);
  for (size_t d = 1; d < ne.size(); ++d) n *= static_cast<size_t>(ne[d]);
  tensors_.push_back({name, type, std::move(ne), {}, std::move(produce), n});
}

std::vector<uint8_t> Writer::header_bytes() const {
  std::vector<uint8_t> b;
  put<uint32_t>(b, kMagic);
  put<uint32_t>(b, 3);
  put<uint64_t>(b, tensors_.size());
  put<uint64_t>(b, n_kv_);
  b.insert(b.end(), kv_bytes_.begin(), kv_bytes_.end());
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(b, t.name);
    put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(b, static_cast<uint64_t>(d));
    put<uint32_t>(b, static_cast<uint32_t>(t.type));
    put<uint64_t>(b, off);
    off += t.n_bytes;
    off += (alignment_ - off % alignment_) % alignment_;
  }
  b.resize(b.size() + (alignment_ - b.size() % alignment_) % alignment_, 0);
  return b;
}

std::vector<uint8_t> Writer::serialize() const {
  std::vector<uint8_t> b = header_bytes();
  for (const auto& t : tensors_) {
    if (t.produce) {
      auto d = t.produce();
      b.insert(b.end(), d.begin(), d.end());
    } else {
      b.insert(b.end(), t.data.begin(), t.data.end());
    }
    b.resize(b.size() + (alignment_ - b.size() % alignment_) % alignment_, 0);
  }
  return b;
}

core::Status Writer::write_file(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    return core::make_error(ErrorKind::internal, "cannot create '" + tmp + "': " + std::strerror(errno),
                            core::ErrorSource::local);
  }
  bool ok = true;
  const auto head = header_bytes();
  ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  static const uint8_t zeros[256] = {};
  for (const auto& t : tensors_) {
    if (!ok) break;
    std::vector<uint8_t> produced;
    if (t.produce) produced = t.produce();
    const std::vector<uint8_t>& d = t.produce ? produced : t.data;
    if (d.size() != t.n_bytes) {
      std::fclose(f);
      std::remove(tmp.c_str());
      return core::make_error(ErrorKind::internal, "tensor '" + t.name + "' produced " + std::to_string(d.size()) +
                              " bytes, expected " + std::to_string(t.n_bytes), core::ErrorSource::local);
    }
    ok = std::fwrite(d.data(), 1, d.size(), f) == d.size();
    const size_t pad = (alignment_ - d.size() % alignment_) % alignment_;
    if (ok && pad) ok = std::fwrite(zeros, 1, pad, f) == pad;
  }
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return core::make_error(ErrorKind::internal, "cannot write '" + path + "': " + std::strerror(errno),
                            core::ErrorSource::local);
  }
  return core::ok_status();
}

}  // namespace local_backend::gguf
