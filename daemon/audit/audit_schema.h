#pragma once

// The PostgreSQL schema (docs/design.md, Audit trail; and the gateway keys,
// keys/gateway_keys.h),
// as versioned migrations applied in order at start-up.
//
// Each migration runs in its own transaction that first takes a fixed
// advisory transaction lock (so two sarkd starting together apply it
// once) and checks sark_schema_migrations for its version.  Nothing here
// needs session state (no named prepared statements, no plain SET), so it
// works through PgBouncer in transaction mode.

#include <cstdint>
#include <string>
#include <vector>

namespace sark {

struct Migration {
  int version;
  const char* name; // letters, digits and '_' only
  const char* sql;  // one or more statements, no transaction control
};

// In version order.
const std::vector<Migration>& auditMigrations();

// Keys of the advisory locks (pg_advisory_xact_lock(kAuditLockKey, n)).
constexpr int kAuditLockKey = 1396789835; // "SARK"
constexpr int kAuditLockMigrate = 1;      // migrations and partition creation
constexpr int kAuditLockRefresh = 2;      // refresh of gateway_audit_hourly

// Step 1 of applying `m` (one round trip): opens the transaction, takes
// the lock, makes sure sark_schema_migrations exists and selects the
// version (one row = already applied: send COMMIT and go on).
// `timeout_ms` becomes the transaction's statement_timeout.
std::string migrationCheckSql(const Migration& m, uint32_t timeout_ms);
// Step 2, when the version was not there: the migration, its record in
// sark_schema_migrations, COMMIT.
std::string migrationApplySql(const Migration& m);

// Maintenance, each to be run in a transaction of its own.
// Creates the monthly partitions from this month through three ahead
// (returns how many it created).
extern const char* const kAuditEnsurePartitionsSql;
// REFRESH MATERIALIZED VIEW CONCURRENTLY gateway_audit_hourly, skipped
// when another sarkd is refreshing it right now.
extern const char* const kAuditRefreshHourlySql;

} // namespace sark
