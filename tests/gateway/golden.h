#pragma once
// Golden-file helpers shared by the translation tests: one case is an input file and an expected
// file beside it. GOLDEN_UPDATE=1 rewrites the expected files from the current output (review the
// diff before committing).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace golden {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline bool updating() {
  const char* u = std::getenv("GOLDEN_UPDATE");
  return u != nullptr && std::string(u) == "1";
}

// Compares `actual` with the expected file (or rewrites it in update mode).
inline void expect_golden(const fs::path& expected, const std::string& actual) {
  if (updating()) {
    std::ofstream(expected, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(fs::exists(expected)) << "missing golden file " << expected;
  EXPECT_EQ(read_file(expected), actual) << "golden mismatch: " << expected;
}

// The files of `dir` whose names end in `suffix`, sorted.
inline std::vector<fs::path> cases(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// `p` with its `suffix` replaced.
inline fs::path sibling(const fs::path& p, const std::string& suffix, const std::string& replacement) {
  std::string s = p.string();
  return s.substr(0, s.size() - suffix.size()) + replacement;
}

inline std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace golden
