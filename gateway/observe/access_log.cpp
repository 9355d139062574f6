#include "gateway/observe/access_log.h"

#include <chrono>
#include <ctime>

#include "core/json_writer.h"

namespace gateway {

bool AccessLog::open(const std::string& target, std::string& error) {
  if (target == "off" || target.empty()) return true;
  if (target == "stdout") { f_ = stdout; return true; }
  if (target == "stderr") { f_ = stderr; return true; }
  f_ = std::fopen(target.c_str(), "a");
  if (!f_) {
    error = "cannot open access log '" + target + "'";
    return false;
  }
  owned_ = true;
  return true;
}

AccessLog::~AccessLog() {
  if (owned_ && f_) std::fclose(f_);
}

void AccessLog::write(const AccessRecord& r) {
  if (!f_) return;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[40];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string s = "{\"ts\":\"";
  s += ts;
  s += "\",\"request_id\":";
  core::append_json_string(s, r.request_id);
  s += ",\"method\":";
  core::append_json_string(s, r.method);
  s += ",\"path\":";
  core::append_json_string(s, r.path.substr(0, 200));
  if (!r.tenant.empty()) { s += ",\"tenant\":"; core::append_json_string(s, r.tenant); }
  if (!r.model.empty()) { s += ",\"model\":"; core::append_json_string(s, r.model.substr(0, 256)); }
  if (!r.deployment.empty()) { s += ",\"deployment\":"; core::append_json_string(s, r.deployment); }
  if (!r.route.empty()) { s += ",\"route\":"; core::append_json_string(s, r.route); }
  s += ",\"status\":" + std::to_string(r.status);
  s += ",\"attempts\":" + std::to_string(r.attempts);
  s += std::string(",\"stream\":") + (r.stream ? "true" : "false");
  if (r.usage.present) {
    s += ",\"prompt_tokens\":" + std::to_string(r.usage.prompt_tokens) +
         ",\"cached_tokens\":" + std::to_string(r.usage.cached_tokens) +
         ",\"completion_tokens\":" + std::to_string(r.usage.completion_tokens) +
         ",\"reasoning_tokens\":" + std::to_string(r.usage.reasoning_tokens);
  }
  if (!r.cost_usd.empty()) s += ",\"cost_usd\":" + r.cost_usd;
  char num[64];
  std::snprintf(num, sizeof num, "%.3f", r.latency_ms);
  s += ",\"latency_ms\":";
  s += num;
  if (r.ttft_ms > 0) {
    std::snprintf(num, sizeof num, "%.3f", r.ttft_ms);
    s += ",\"ttft_ms\":";
    s += num;
  }
  if (!r.error.empty()) { s += ",\"error\":"; core::append_json_string(s, r.error.substr(0, 500)); }
  s += "}\n";
  std::lock_guard lock(mu_);
  std::fwrite(s.data(), 1, s.size(), f_);
  std::fflush(f_);
}

}  // namespace gateway
