#pragma once
// A deployment = provider instance x model x endpoint region: the unit the router chooses.
#include <string>

namespace routing {

struct Deployment {
  std::string id;        // unique, stable: "<provider>@<region>/<model>", used in metrics and headers
  std::string provider;  // provider instance name from config ("deepseek", "qwen-us", "local", "my-vllm")
  std::string region;    // endpoint region key of that provider ("global", "ap-southeast-1", "intl", ...)
  std::string model;     // model id sent upstream
};

// Parses "provider[@region]/model" (model may itself contain '/').
bool parse_deployment_ref(const std::string& ref, Deployment& out, std::string& error);
std::string deployment_id(const std::string& provider, const std::string& region, const std::string& model);

}  // namespace routing
