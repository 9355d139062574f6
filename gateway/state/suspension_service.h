#pragma once
// The runtime kill switch: suspensions made and lifted through the admin API, recorded in the
// audit table before they take effect (a suspension that cannot be recorded is an error, never a
// silent no-op), replayed from it at start-up, and shared by a fleet through Redis.
//
// Fleet (state.mode: redis): each change is written to the hashes <prefix>:active (id -> fields)
// and <prefix>:lifted (tombstones) and bumps <prefix>:version; every replica polls the version
// every `poll_interval` and, when it moved, reads both hashes. A replica records in its own audit
// table the lift of a suspension it holds that another replica lifted, and re-publishes its own
// suspensions Redis does not know (made while Redis was down, or after Redis lost its data).
// Redis unreachable: the replica keeps every suspension it last knew and its own, logs the
// outage once and reports it (fleet_sync_failing); it never lifts a suspension because Redis is
// gone. Tombstones carry their lift time and are deleted after `lifted_retention` (30 days).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "gateway/state/periodic.h"
#include "gateway/state/suspension_audit.h"
#include "routing/suspensions.h"

namespace gateway {

class RedisClient;
struct RedisReply;

struct SuspensionServiceOptions {
  std::chrono::milliseconds poll_interval{500};  // state.suspensions.poll_interval_ms
  std::string redis_prefix = "gateway:suspensions";
  // Tombstones in <prefix>:lifted older than this are deleted (a replica offline for longer could
  // re-publish a suspension lifted meanwhile from its own audit table).
  std::chrono::hours lifted_retention{24 * 30};
};

class SuspensionService {
 public:
  using Publish = std::function<void(std::shared_ptr<const routing::SuspensionList>)>;
  // `redis` may be null (one replica). `publish` receives every new runtime set (the router's).
  SuspensionService(std::unique_ptr<SuspensionAudit> audit, std::shared_ptr<RedisClient> redis,
                    SuspensionServiceOptions options, Publish publish);
  ~SuspensionService();
  SuspensionService(const SuspensionService&) = delete;
  SuspensionService& operator=(const SuspensionService&) = delete;

  // Replays the audit table, reads the fleet's suspensions once and starts the poller.
  core::Status start();
  void stop();

  // Records, then applies. `by` names who decided.
  core::Result<routing::Suspension> suspend(const routing::SuspensionSelector& selector, const std::string& reason,
                                            const std::string& by);
  // Lifts the runtime suspension `id`; not_found when no runtime suspension has that id.
  core::Result<routing::Suspension> lift(const std::string& id, const std::string& by);
  // Ids of the runtime suspensions with this selector.
  std::vector<std::string> ids_of(const routing::SuspensionSelector& selector) const;

  routing::SuspensionList runtime() const;
  std::string audit_where() const { return audit_->describe(); }
  bool fleet() const { return redis_ != nullptr; }
  bool fleet_sync_failing() const { return sync_failing_.load(); }
  uint64_t fleet_sync_failures() const { return sync_failures_.load(); }
  uint64_t fleet_polls() const { return polls_.load(); }
  std::chrono::milliseconds poll_interval() const { return options_.poll_interval; }

  // One poll of the fleet's state (the poller calls it every poll_interval; tests call it directly).
  void poll_fleet();

 private:
  void apply_locked();  // mu_ held: hands local_ + fleet_ to publish_
  bool publish_suspend(const routing::Suspension& s);
  bool publish_lift(const routing::Suspension& s, const std::string& by);
  void prune_lifted(const RedisReply& lifted);
  void sync_failed(const std::string& why);
  void sync_ok();

  std::unique_ptr<SuspensionAudit> audit_;
  std::shared_ptr<RedisClient> redis_;
  SuspensionServiceOptions options_;
  Publish publish_;

  mutable std::mutex mu_;
  routing::SuspensionList local_;  // made or recorded on this replica (its audit table)
  routing::SuspensionList fleet_;  // other replicas' (last known from Redis)
  std::vector<std::pair<routing::Suspension, std::string>> pending_lifts_;  // tombstones Redis has not taken
  std::string last_version_;

  std::atomic<bool> sync_failing_{false};
  std::atomic<uint64_t> sync_failures_{0}, polls_{0};
  PeriodicThread poller_;
};

// "2026-12-02T18:45:07Z"
std::string utc_timestamp(std::chrono::system_clock::time_point t);

}  // namespace gateway
