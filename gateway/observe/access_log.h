#pragma once
// One JSON line per request: ids, deployment, status, tokens, latency, attempts. Never prompt text,
// never secrets.
#include <cstdio>
#include <mutex>
#include <string>

#include "core/usage.h"

namespace gateway {

struct AccessRecord {
  std::string request_id;
  std::string method, path;
  std::string tenant;
  std::string model;
  std::string deployment;
  std::string route;
  int status = 0;
  int attempts = 0;
  bool stream = false;
  core::Usage usage;
  double latency_ms = 0;
  double ttft_ms = 0;
  std::string cost_usd;  // invoice cost of the attempt that answered, when the prices are known
  std::string error;  // error kind and message (upstream messages never contain our secrets)
  std::string client;

  // Ready for the connection's next request: every field back to its default, strings keeping
  // their capacity (a connection reuses one record, so logging a request allocates nothing).
  void clear() {
    for (std::string* f : {&request_id, &method, &path, &tenant, &model, &deployment, &route, &cost_usd, &error, &client})
      f->clear();
    status = 0;
    attempts = 0;
    stream = false;
    usage = {};
    latency_ms = 0;
    ttft_ms = 0;
  }
};

class AccessLog {
 public:
  // "off", "stdout", "stderr" or a file path (appended).
  bool open(const std::string& target, std::string& error);
  void write(const AccessRecord& r);
  ~AccessLog();

 private:
  std::mutex mu_;
  FILE* f_ = nullptr;
  bool owned_ = false;
};

}  // namespace gateway
