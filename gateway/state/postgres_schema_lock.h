#pragma once
// Taken inside every transaction that creates or changes the gateway's tables in PostgreSQL (the
// spend ledger, the suspension audit): replicas that start at once against a fresh database would
// otherwise race on CREATE TABLE IF NOT EXISTS, which is not atomic there (the loser fails with a
// unique violation in the catalog and the replica does not start).
namespace gateway {

inline constexpr const char* kPostgresSchemaLock = "SELECT pg_advisory_xact_lock(7741700019)";

}  // namespace gateway
