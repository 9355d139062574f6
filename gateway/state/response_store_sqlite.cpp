// Stored responses in a SQLite file of their own (WAL): one row per response. Bounded by age
// (rows older than max_age are deleted) and by bytes (beyond max_bytes the oldest go first); both
// are enforced as responses are put, in small steps, so no single put pays for a large sweep.
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <mutex>

#include "core/error.h"
#include "gateway/state/response_store.h"

namespace gateway {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS responses ("
    " id TEXT NOT NULL, tenant TEXT NOT NULL, previous_id TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL, response TEXT NOT NULL, input_items TEXT NOT NULL, output_items TEXT NOT NULL,"
    " PRIMARY KEY (tenant, id));"
    "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (created_at);";

constexpr int kPruneBatch = 64;  // rows deleted per step of a sweep

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class SqliteResponseStore final : public ResponseStore {
 public:
  SqliteResponseStore(std::string path, ResponseStoreLimits limits) : path_(std::move(path)), limits_(limits) {}
  ~SqliteResponseStore() override {
    for (sqlite3_stmt* s : {insert_, select_, delete_}) sqlite3_finalize(s);
    if (db_) sqlite3_close_v2(db_);
  }

  core::Status open() {
    int rc = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) return failure("cannot open", rc);
    sqlite3_busy_timeout(db_, 5000);
    sqlite3_extended_result_codes(db_, 1);
    if (path_ != ":memory:" && (rc = exec("PRAGMA journal_mode=WAL")) != SQLITE_OK) return failure("cannot use WAL", rc);
    if ((rc = exec("PRAGMA synchronous=NORMAL")) != SQLITE_OK) return failure("cannot configure", rc);
    if ((rc = exec(kSchema)) != SQLITE_OK) return failure("cannot create its table", rc);
    rc = prepare("INSERT OR REPLACE INTO responses (id, tenant, previous_id, created_at, bytes, response, input_items,"
                 " output_items) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)", &insert_);
    if (rc == SQLITE_OK)
      rc = prepare("SELECT previous_id, created_at, response, input_items, output_items FROM responses"
                   " WHERE tenant = ?1 AND id = ?2", &select_);
    if (rc == SQLITE_OK) rc = prepare("DELETE FROM responses WHERE tenant = ?1 AND id = ?2", &delete_);
    if (rc != SQLITE_OK) return failure("cannot prepare its statements", rc);
    sqlite3_stmt* sum = nullptr;
    if ((rc = prepare("SELECT COALESCE(SUM(bytes), 0) FROM responses", &sum)) != SQLITE_OK)
      return failure("cannot read its size", rc);
    if (sqlite3_step(sum) == SQLITE_ROW) bytes_ = static_cast<uint64_t>(sqlite3_column_int64(sum, 0));
    sqlite3_finalize(sum);
    return core::ok_status();
  }

  core::Status put(const StoredResponse& r) override {
    // One response must not flush the store.
    if (r.bytes() > limits_.max_bytes / 4)
      return core::make_error(core::ErrorKind::payload_too_large,
                              "the response is larger than a quarter of the store's bound (" +
                                  std::to_string(limits_.max_bytes) + " bytes) and was not stored",
                              core::ErrorSource::gateway, "response_too_large_to_store");
    std::lock_guard lk(mu_);
    sqlite3_reset(insert_);
    bind(insert_, 1, r.id);
    bind(insert_, 2, r.tenant);
    bind(insert_, 3, r.previous_id);
    sqlite3_bind_int64(insert_, 4, r.created_at);
    sqlite3_bind_int64(insert_, 5, static_cast<int64_t>(r.bytes()));
    bind(insert_, 6, r.response_json);
    bind(insert_, 7, r.input_items_json);
    bind(insert_, 8, r.output_items_json);
    const int rc = sqlite3_step(insert_);
    sqlite3_reset(insert_);
    if (rc != SQLITE_DONE) return failure("cannot store a response", rc);
    bytes_ += r.bytes();
    prune_step();
    return core::ok_status();
  }

  core::Result<std::optional<StoredResponse>> get(std::string_view tenant, std::string_view id) override {
    std::lock_guard lk(mu_);
    sqlite3_reset(select_);
    bind(select_, 1, tenant);
    bind(select_, 2, id);
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_DONE) return std::optional<StoredResponse>{};
    if (rc != SQLITE_ROW) return failure("cannot read a response", rc);
    StoredResponse r;
    r.id = id;
    r.tenant = tenant;
    r.previous_id = text(select_, 0);
    r.created_at = sqlite3_column_int64(select_, 1);
    r.response_json = text(select_, 2);
    r.input_items_json = text(select_, 3);
    r.output_items_json = text(select_, 4);
    sqlite3_reset(select_);
    if (r.created_at < unix_now() - limits_.max_age.count()) return std::optional<StoredResponse>{};  // not swept yet
    return std::optional<StoredResponse>(std::move(r));
  }

  core::Result<bool> remove(std::string_view tenant, std::string_view id) override {
    std::lock_guard lk(mu_);
    sqlite3_reset(delete_);
    bind(delete_, 1, tenant);
    bind(delete_, 2, id);
    const int rc = sqlite3_step(delete_);
    sqlite3_reset(delete_);
    if (rc != SQLITE_DONE) return failure("cannot delete a response", rc);
    return sqlite3_changes(db_) > 0;
  }

  std::string describe() const override {
    return (path_ == ":memory:" ? std::string("memory (lost at restart)") : "SQLite " + path_) + ", at most " +
           std::to_string(limits_.max_bytes >> 20) + " MiB, " + std::to_string(limits_.max_age.count() / 86400) +
           " days";
  }

 private:
  // One step of the sweep: every kPruneBatch puts, up to kPruneBatch expired rows; over the byte
  // bound, the oldest rows until a tenth of the bound is free again (at most kPruneBatch per put).
  void prune_step() {
    if (++puts_since_age_sweep_ >= kPruneBatch) {
      puts_since_age_sweep_ = 0;
      delete_oldest("created_at < " + std::to_string(unix_now() - limits_.max_age.count()), UINT64_MAX);
    }
    if (bytes_ > limits_.max_bytes) delete_oldest("1", bytes_ - limits_.max_bytes / 10 * 9);
  }

  // Deletes the oldest rows matching `condition` until `enough` bytes are freed (or kPruneBatch rows).
  void delete_oldest(const std::string& condition, uint64_t enough) {
    sqlite3_stmt* q = nullptr;
    if (prepare("SELECT rowid, bytes FROM responses WHERE " + condition + " ORDER BY created_at LIMIT " +
                    std::to_string(kPruneBatch), &q) != SQLITE_OK)
      return;
    std::string rowids;
    uint64_t freed = 0;
    while (freed < enough && sqlite3_step(q) == SQLITE_ROW) {
      if (!rowids.empty()) rowids += ',';
      rowids += std::to_string(sqlite3_column_int64(q, 0));
      freed += static_cast<uint64_t>(sqlite3_column_int64(q, 1));
    }
    sqlite3_finalize(q);
    if (!rowids.empty() && exec("DELETE FROM responses WHERE rowid IN (" + rowids + ")") == SQLITE_OK)
      bytes_ = freed > bytes_ ? 0 : bytes_ - freed;
  }

  int exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  int prepare(const std::string& sql, sqlite3_stmt** s) {
    return sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, s, nullptr);
  }
  static void bind(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  static std::string text(sqlite3_stmt* s, int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, col))) : std::string();
  }
  core::Error failure(const std::string& what, int rc) const {
    return core::make_error(core::ErrorKind::unavailable,
                            "the response store " + path_ + " " + what + ": " + sqlite3_errstr(rc) +
                                (db_ ? std::string(" (") + sqlite3_errmsg(db_) + ")" : std::string()),
                            core::ErrorSource::gateway, "response_store_unavailable");
  }

  std::string path_;
  ResponseStoreLimits limits_;
  std::mutex mu_;  // one connection, used by the blocking pool's threads in turn
  sqlite3* db_ = nullptr;
  sqlite3_stmt *insert_ = nullptr, *select_ = nullptr, *delete_ = nullptr;
  uint64_t bytes_ = 0;
  int puts_since_age_sweep_ = 0;
};

}  // namespace

core::Result<std::unique_ptr<ResponseStore>> open_sqlite_response_store(const std::string& path,
                                                                        ResponseStoreLimits limits) {
  auto store = std::make_unique<SqliteResponseStore>(path, limits);
  if (auto s = store->open(); !s) return std::move(s).error();
  return std::unique_ptr<ResponseStore>(std::move(store));
}

}  // namespace gateway
