#pragma once
// Strict YAML reading for the gateway's config sections: every error carries file:line:column,
// unknown keys are errors, scalars have their expected type. Start-up code only (throws).
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>

namespace gateway::yaml_checks {

struct ConfigError {
  std::string message;
};

inline std::string where(const std::string& file, const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return file + ": ";
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": ";
}

[[noreturn]] inline void fail(const std::string& file, const YAML::Node& n, const std::string& msg) {
  throw ConfigError{where(file, n) + msg};
}

inline void check_keys(const std::string& file, const YAML::Node& map, const std::string& section,
                       std::initializer_list<const char*> allowed) {
  if (!map.IsMap()) fail(file, map, section + " must be a mapping");
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string k = it->first.as<std::string>();
    bool ok = false;
    for (const char* a : allowed) ok |= k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(file, it->first, "unknown key '" + k + "' in " + section + " (allowed: " + list + ")");
    }
  }
}

template <class T>
T scalar(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) fail(file, n, what + " must be a scalar");
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    fail(file, n, what + " has the wrong type ('" + n.Scalar() + "')");
  }
}

}  // namespace gateway::yaml_checks
