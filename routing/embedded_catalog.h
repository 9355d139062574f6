#pragma once
// The bytes of routing/catalog/builtin.yaml, written into a generated source at build time by
// cmake/embed_files.cmake (routing/CMakeLists.txt); read through builtin_catalog_text().
#include <cstddef>

namespace routing::embedded {
struct EmbeddedFile {
  const char* name;
  const unsigned char* data;
  size_t size;
};
extern const EmbeddedFile kCatalogFiles[];
extern const size_t kCatalogFilesCount;
}  // namespace routing::embedded
