#pragma once
// The spend ledger in a PostgreSQL database shared by a fleet of gateways (libpq).
//
// Same table as the SQLite ledger (spend: ts_ms as Unix ms, costs as integer pico-USD, UNIQUE
// (request_id, attempt)), created if absent under an advisory lock so replicas starting together
// create it once. A batch is one transaction, one multi-row INSERT ... ON CONFLICT DO NOTHING per
// kRowsPerInsert rows: a batch retried after a COMMIT whose answer was lost counts nothing twice.
// An entry is durable once the server acknowledged COMMIT (the server's own synchronous_commit
// decides how durable that is against the server's crash; the default waits for its WAL flush).
//
// Outage: a failed statement drops the connection; the next commit or idle probe reconnects. The
// writer probes the server every kProbeInterval while idle, so failing() turns true within about
// that long after the server goes away, without waiting for a request to need it. Connections use
// TCP keepalives and a TCP user timeout, so a server that vanishes without a reset is noticed in
// seconds rather than after the kernel's default retransmission time.
#include <memory>
#include <mutex>
#include <string>

#include "gateway/state/ledger_store.h"

struct pg_conn;
struct pg_result;

namespace gateway {

class PostgresLedgerStore final : public LedgerStore {
 public:
  static constexpr std::chrono::milliseconds kProbeInterval{500};
  static constexpr size_t kRowsPerInsert = 1000;  // 16 parameters a row; the protocol allows 65535

  // Connects (a postgres:// URL or a key=value connection string), creates the schema if absent and
  // checks its version. Errors name the server, never the password.
  static core::Result<std::unique_ptr<PostgresLedgerStore>> open(const std::string& conninfo);
  ~PostgresLedgerStore() override;

  std::string describe() const override { return where_; }
  bool commit(const std::vector<const LedgerEntry*>& batch, std::string* error) override;
  std::optional<std::chrono::milliseconds> idle_after() const override { return kProbeInterval; }
  bool idle(std::string* error) override;
  int64_t prune(int64_t cutoff_ms, const std::function<bool()>& yield) override;

  core::Result<std::vector<SpendRow>> report(SpendGroup group, int64_t from_ms, int64_t to_ms) const override;
  core::Result<core::Money> spent(std::string_view tenant, int64_t since_ms) const override;
  core::Result<std::pair<int64_t, core::Money>> totals() const override;

 private:
  PostgresLedgerStore() = default;
  // The writer's connection, (re)connected if it is missing or broken; nullptr with `error`.
  pg_conn* writer(std::string* error);
  pg_conn* reader(std::string* error) const;  // read_mu_ held
  bool commit_once(const std::vector<const LedgerEntry*>& batch, std::string* error);
  // A read's rows (the caller PQclears them), or nullptr with `error`; read_mu_ held.
  pg_result* read(const char* sql, int nparams, const char* const* params, std::string* error) const;

  std::string conninfo_;
  std::string where_;          // "postgres host:port/db" for messages
  pg_conn* wconn_ = nullptr;   // writer thread only after open
  mutable pg_conn* rconn_ = nullptr;  // guarded by read_mu_
  mutable std::mutex read_mu_;
};

}  // namespace gateway
