#include "routing/deployment.h"

namespace routing {

std::string deployment_id(const std::string& provider, const std::string& region, const std::string& model) {
  return provider + "@" + region + "/" + model;
}

bool parse_deployment_ref(const std::string& ref, Deployment& out, std::string& error) {
  auto slash = ref.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == ref.size()) {
    error = "deployment '" + ref + "' must look like provider[@region]/model";
    return false;
  }
  std::string head = ref.substr(0, slash);
  out.model = ref.substr(slash + 1);
  auto at = head.find('@');
  if (at == std::string::npos) {
    out.provider = head;
    out.region.clear();  // provider's default region, filled in by the caller
  } else {
    out.provider = head.substr(0, at);
    out.region = head.substr(at + 1);
    if (out.provider.empty() || out.region.empty()) {
      error = "deployment '" + ref + "': empty provider or region";
      return false;
    }
  }
  return true;
}

}  // namespace routing
