// JSON string escaping (core::append_json_string), the hot path of every answer the gateway writes
// itself (translated stream events, error bodies, ledger reports), against the byte-at-a-time loop
// it replaced, in the same binary: plain text, text with a quote every 64 bytes, and CJK text.
#include <benchmark/benchmark.h>

#include <string>

#include "core/json_writer.h"

namespace {

void byte_loop(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += "\\u00"; out.push_back(hex[c >> 4]); out.push_back(hex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string text(int kind) {
  std::string s;
  while (s.size() < 4096) {
    if (kind == 0) s += "The quick brown fox jumps over the lazy dog. ";
    else if (kind == 1) s += "She said \"hello\" and left; the rest of the line is plain text ..\n";
    else s += "你好，世界。这是一个测试句子，用来测量转义速度。";
  }
  s.resize(4096);
  return s;
}

template <bool Fast>
void BM_Escape(benchmark::State& state) {
  const std::string s = text(int(state.range(0)));
  std::string out;
  out.reserve(3 * s.size());
  for (auto _ : state) {
    out.clear();
    if constexpr (Fast) core::append_json_string(out, s);
    else byte_loop(out, s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(s.size()));
}

}  // namespace

// range: 0 = plain ASCII, 1 = a quote and a newline every ~64 bytes, 2 = CJK (UTF-8).
BENCHMARK(BM_Escape<false>)->Name("escape/byte_loop_baseline")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_Escape<true>)->Name("escape/append_json_string")->Arg(0)->Arg(1)->Arg(2);
BENCHMARK_MAIN();
