#include "gateway/admin/ui_assets.h"

#include <vector>

namespace gateway {
namespace {

std::string_view content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  // With nosniff a browser will neither run nor style with this; the unit test keeps it unused.
  return "application/octet-stream";
}

// Built once, on first use, from the generated table.
const std::vector<UiAsset>& assets() {
  static const std::vector<UiAsset> all = [] {
    std::vector<UiAsset> v;
    for (size_t i = 0; i < embedded::kUiFilesCount; ++i) {
      const auto& f = embedded::kUiFiles[i];
      v.push_back({f.name, content_type_of(f.name), {reinterpret_cast<const char*>(f.data), f.size}});
    }
    return v;
  }();
  return all;
}

}  // namespace

const UiAsset* find_ui_asset(std::string_view path) {
  std::string_view name;
  if (path == "/ui" || path == "/ui/") name = "index.html";
  else if (path.rfind("/ui/", 0) == 0) name = path.substr(4);
  else return nullptr;
  for (const auto& a : assets())
    if (a.name == name) return &a;
  return nullptr;
}

const UiAsset* ui_assets_begin() { return assets().data(); }
const UiAsset* ui_assets_end() { return assets().data() + assets().size(); }

}  // namespace gateway
