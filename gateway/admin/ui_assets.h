#pragma once
// The status page's files (gateway/admin/ui/), compiled into the binary at build time by
// cmake/embed_files.cmake: GET /ui is index.html, GET /ui/<name> the file of that name, nothing else.
#include <cstddef>
#include <string_view>

namespace gateway {

struct UiAsset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;          // the file's bytes, unchanged
};

// The asset served at a request path (no query), or nullptr: "/ui" and "/ui/" are index.html.
const UiAsset* find_ui_asset(std::string_view path);

// Every embedded asset, in the order CMake lists them.
const UiAsset* ui_assets_begin();
const UiAsset* ui_assets_end();

// Sent with every /ui response: scripts, styles, images and fetches from this origin only; no
// inline script or style, no framing, no form posts elsewhere, no base-URI tricks.
inline constexpr std::string_view kUiContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

namespace embedded {
// Written by the generated source (ui_assets_data.cpp).
struct EmbeddedFile {
  const char* name;
  const unsigned char* data;
  size_t size;
};
extern const EmbeddedFile kUiFiles[];
extern const size_t kUiFilesCount;
}  // namespace embedded

}  // namespace gateway
