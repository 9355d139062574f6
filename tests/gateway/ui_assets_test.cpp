#include "gateway/admin/ui_assets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace gateway::embedded {
// Made by gateway_embed_files from tests/gateway/embed_fixture/ (tests/CMakeLists.txt).
extern const EmbeddedFile kFixtureFiles[];
extern const size_t kFixtureFilesCount;
}  // namespace gateway::embedded

namespace gateway {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(EmbedFiles, AnyByteAndAnEmptyFileEmbedUnchanged) {
  ASSERT_EQ(embedded::kFixtureFilesCount, 2u);
  const fs::path dir = fs::path(GW_SOURCE_DIR) / "tests/gateway/embed_fixture";
  for (size_t i = 0; i < embedded::kFixtureFilesCount; ++i) {
    const auto& f = embedded::kFixtureFiles[i];
    const std::string disk = read_file(dir / f.name);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data), f.size), disk) << f.name;
    EXPECT_EQ(f.data[f.size], 0) << "the array ends with one NUL beyond its size";
  }
  // The fixture holds every byte value, a raw-string terminator and invalid UTF-8.
  const std::string all(reinterpret_cast<const char*>(embedded::kFixtureFiles[0].data), embedded::kFixtureFiles[0].size);
  EXPECT_EQ(std::set<char>(all.begin(), all.end()).size(), 256u);
  EXPECT_NE(all.find(")\""), std::string::npos);
  EXPECT_EQ(embedded::kFixtureFiles[1].size, 0u);
}

TEST(UiAssets, EveryFileOfTheFolderIsServedByteForByte) {
  const fs::path dir = fs::path(GW_SOURCE_DIR) / "gateway/admin/ui";
  std::set<std::string> on_disk, embedded_names;
  for (const auto& e : fs::directory_iterator(dir)) on_disk.insert(e.path().filename().string());
  for (const UiAsset* a = ui_assets_begin(); a != ui_assets_end(); ++a) {
    embedded_names.insert(std::string(a->name));
    EXPECT_EQ(a->body, read_file(dir / a->name)) << a->name;
    EXPECT_NE(a->content_type, "application/octet-stream") << a->name << ": give its extension a type";
    const UiAsset* found = find_ui_asset("/ui/" + std::string(a->name));
    ASSERT_NE(found, nullptr) << a->name;
    EXPECT_EQ(found->name, a->name);
  }
  EXPECT_EQ(embedded_names, on_disk) << "a file in gateway/admin/ui/ is missing from the kUiFiles list in gateway/CMakeLists.txt";
}

TEST(UiAssets, ContentTypesAndTheIndex) {
  for (const char* index : {"/ui", "/ui/", "/ui/index.html"}) {
    const UiAsset* a = find_ui_asset(index);
    ASSERT_NE(a, nullptr) << index;
    EXPECT_EQ(a->name, "index.html");
    EXPECT_EQ(a->content_type, "text/html; charset=utf-8");
  }
  EXPECT_EQ(find_ui_asset("/ui/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_ui_asset("/ui/style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(find_ui_asset("/ui/favicon.svg")->content_type, "image/svg+xml");
}

TEST(UiAssets, NothingOutsideTheTableIsFound) {
  for (const char* p : {"", "/", "/u", "/uix", "/UI", "/ui/App.js", "/ui/app.js/", "/ui//app.js", "/ui/./app.js",
                        "/ui/../admin/state", "/ui/%61pp.js", "/ui/app.js%00", "/ui/app", "/ui/.", "/ui/..",
                        "/admin/ui/app.js", "ui/app.js", "/ui/index.html?x"})
    EXPECT_EQ(find_ui_asset(p), nullptr) << p;
  EXPECT_EQ(find_ui_asset(std::string_view("/ui/app.js\0", 11)), nullptr);
}

}  // namespace
}  // namespace gateway
