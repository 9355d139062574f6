// gguf-tensor-error: how far each file's weights are from a reference file's, as the engine
// decodes them: per tensor type, the largest relative RMS error rms(w - ref) / rms(ref) over
// the tensors stored in that type. Used to check that the engine reads another quantiser's
// blocks right (tests/bench/llama_cpp/quantized_load.sh): a misread layout gives errors near 1
// or more, a right one the quantisation error of the type.
//   gguf-tensor-error REF.gguf FILE.gguf...
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "local_backend/gguf.h"
#include "local_backend/quants.h"

namespace {

using namespace local_backend;

// Dequantises a whole tensor; empty when the engine cannot decode its type.
std::vector<float> decode(const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const int64_t cols = t.ne[0], rows = t.n_elements() / cols;
  const size_t rb = row_size(t.type, cols);
  for (int64_t r = 0; r < rows; ++r)
    if (!dequantize_row(t.type, t.data + static_cast<size_t>(r) * rb, out.data() + r * cols, cols)) return {};
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s REF.gguf FILE.gguf...\n", argv[0]);
    return 2;
  }
  auto ref = gguf::File::open(argv[1]);
  if (!ref.ok()) {
    std::fprintf(stderr, "error: %s\n", ref.error().message.c_str());
    return 1;
  }
  int status = 0;
  for (int i = 2; i < argc; ++i) {
    auto f = gguf::File::open(argv[i]);
    if (!f.ok()) {
      std::fprintf(stderr, "error: %s\n", f.error().message.c_str());
      return 1;
    }
    std::map<std::string, double> worst;  // type name -> largest relative RMS error
    for (const auto& t : (*f)->tensors()) {
      const gguf::TensorInfo* r = (*ref)->find_tensor(t.name);
      if (!r || r->n_elements() != t.n_elements()) {
        std::printf("%s: %.*s has no counterpart of its shape in the reference\n", argv[i], int(t.name.size()), t.name.data());
        status = 1;
        continue;
      }
      const std::vector<float> a = decode(t), b = decode(*r);
      if (a.empty() || b.empty()) {
        std::printf("%s: cannot decode %.*s (%s)\n", argv[i], int(t.name.size()), t.name.data(), type_name(t.type));
        status = 1;
        continue;
      }
      double num = 0, den = 0;
      for (size_t k = 0; k < a.size(); ++k) {
        num += (a[k] - b[k]) * double(a[k] - b[k]);
        den += double(b[k]) * b[k];
      }
      double& w = worst[type_name(t.type)];
      w = std::max(w, den > 0 ? std::sqrt(num / den) : std::sqrt(num));
    }
    std::printf("%s:", argv[i]);
    for (const auto& [type, err] : worst) std::printf(" %s %.4f", type.c_str(), err);
    std::printf("\n");
  }
  return status;
}
