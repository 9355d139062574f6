#pragma once
// A scratch directory private to this test process (ctest runs test cases in parallel
// processes, which must not write the same files), removed when the process exits.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace local_backend {

inline const std::string& test_dir() {
  struct Holder {
    std::string path;
    Holder() {
      path = ::testing::TempDir() + "/local_backend_test_" + std::to_string(::getpid());
      std::filesystem::create_directories(path);
    }
    ~Holder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Holder h;
  return h.path;
}

}  // namespace local_backend
