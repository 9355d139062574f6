#pragma once
// Fleet-wide share caps (state.mode: redis). Every `interval`, on its own thread, this replica hands
// the share counts it served since the last sync to Redis and reads back the fleet's totals over
// each capped route's window, in one Lua script per route:
//
//   <prefix>:<route>:<window>s:<bucket>   a hash per time bucket (window / 60, wall clock) with the
//                                         fields n, usd and <kind>\x1f<key>\x1fn|usd, added to by
//                                         HINCRBYFLOAT and expiring one window and two buckets later
//
// The router then caps on the fleet's totals plus its own counts not yet synced
// (routing::ShareWindow). A failed sync (Redis down, slow, an error reply) keeps the counts for the
// next one, is counted and logged once, and until a sync succeeds the router caps on this
// replica's own window: never a wait on the request path. Fleet totals older than max_age() are not
// used either (a sync stuck in Redis timeouts). A restarted Redis loses the fleet's window, nothing
// else: each replica's unsynced counts still reach it. A round that times out after Redis ran the
// script sends its counts again next round: counted twice, which errs towards the cap.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "gateway/state/periodic.h"
#include "routing/diversify.h"

namespace routing {
class PolicyRouter;
}

namespace gateway {

class RedisClient;

struct ShareSyncOptions {
  std::chrono::milliseconds interval{1000};  // state.shares.sync_interval_ms
  std::chrono::milliseconds redis_timeout{200};
  std::string redis_prefix = "gateway:shares";
};

class ShareSync {
 public:
  // Puts the router's share windows in fleet mode (call before traffic).
  ShareSync(std::shared_ptr<RedisClient> redis, std::shared_ptr<routing::PolicyRouter> router, ShareSyncOptions options);
  ~ShareSync();
  ShareSync(const ShareSync&) = delete;
  ShareSync& operator=(const ShareSync&) = delete;

  // Fleet totals at most this old are used: three intervals, plus the worst case of one round's
  // Redis calls (pool wait, connect, command) so a slow but working Redis is not a fall-back.
  static std::chrono::milliseconds max_age(const ShareSyncOptions& o);

  void start();  // one sync now, then every interval
  void stop();
  // One round over every capped route of the current policy (the thread calls it; tests too).
  void sync_once();

  std::chrono::milliseconds interval() const { return options_.interval; }
  uint64_t syncs() const { return syncs_.load(); }  // successful rounds
  uint64_t failures() const { return failures_.load(); }
  bool failing() const { return failing_.load(); }
  // Seconds since the last successful round (since start() before the first).
  double age_seconds() const;

 private:
  std::optional<routing::ShareTotals> sync_window(const std::string& route, std::chrono::seconds window,
                                                  routing::ShareWindow& w, std::string& why);
  void round_done(bool ok, const std::string& why);

  std::shared_ptr<RedisClient> redis_;
  std::shared_ptr<routing::PolicyRouter> router_;
  ShareSyncOptions options_;

  std::atomic<uint64_t> syncs_{0}, failures_{0};
  std::atomic<bool> failing_{false};
  std::atomic<int64_t> last_ok_ns_{0};  // steady clock
  PeriodicThread thread_;
};

// The Redis hash fields of a share delta or total (n, usd, <kind>\x1f<key>\x1f{n|usd}) and back;
// fields of another shape are skipped.
std::vector<std::pair<std::string, std::string>> share_fields(const routing::ShareTotals& t);
routing::ShareTotals parse_share_fields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace gateway
