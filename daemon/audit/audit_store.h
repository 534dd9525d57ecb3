#pragma once

// The PostgreSQL side of the audit trail: DATABASE_POOL_SIZE connections
// (pg_connection.h) behind one circuit breaker.
//
// - The first connection that comes up applies the schema migrations
//   (audit_schema.h); no write is accepted before they succeeded.  A
//   failed migration is retried every 10 s.
// - A write is one transaction on an idle connection: a COPY straight into
//   the table, or, for a batch that may hold stored ids (a re-sent batch, a
//   spool replay), a COPY into a temporary table inserted from there with
//   ON CONFLICT DO NOTHING, so each event is stored once.
// - Maintenance runs on an idle connection, one task at a time: at start
//   and every hour sark_audit_ensure_partitions(3), every
//   AUDIT_SUMMARY_REFRESH_SECONDS (60; 0 = never) a concurrent refresh of
//   gateway_audit_hourly.
// - The breaker counts failed writes and failed connection attempts.  A
//   write rejected for its data (SQLSTATE class 22 or 23) fails, but counts
//   as an answer from a healthy database.  While the breaker is open
//   nothing is written; when it turns half-open the writable listener runs
//   so the writer tries again.
// - Nothing needs session state (no named prepared statements, only SET
//   LOCAL, temporary tables dropped at commit), so the connections may go
//   through PgBouncer in transaction mode.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/pg_connection.h"
#include "core/circuit_breaker.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

class AuditStore {
public:
  // ok: committed.  When !ok, `err` says why (a database error starts with
  // its SQLSTATE: "22P02: ..."); the caller spools the batch.
  using Done = std::function<void(bool ok, const std::string& err)>;

  AuditStore(EventLoop& loop, const Config& cfg);
  // Closes every connection; callbacks of pending writes are dropped, not
  // called (call close() first to have them run).
  ~AuditStore();
  AuditStore(const AuditStore&) = delete;
  AuditStore& operator=(const AuditStore&) = delete;

  // Starts connecting cfg.database_pool_size connections (none when
  // cfg.database_url is empty).  The first connection that comes up applies
  // the migrations; no write is accepted before they succeeded.  Then every
  // hour: sark_audit_ensure_partitions(3); every AUDIT_SUMMARY_REFRESH_SECONDS
  // (60): REFRESH MATERIALIZED VIEW CONCURRENTLY gateway_audit_hourly (both on an idle connection,
  // never overlapping a write on that connection).
  void start();
  bool configured() const { return !conninfo_.empty(); }
  // True when write() would accept a batch now: migrated, a connection is
  // idle, and the circuit breaker allows an attempt.
  bool writable();
  // One transaction on an idle connection: BEGIN; SET LOCAL
  // statement_timeout = <DATABASE_STATEMENT_TIMEOUT>; then either (dedupe
  // false) COPY gateway_audit_events (<kAuditCopyColumns>) FROM STDIN,
  // which fails with 23505 when an id is already stored, or (dedupe true)
  // CREATE TEMP TABLE <stage> (LIKE gateway_audit_events INCLUDING
  // DEFAULTS) ON COMMIT DROP; COPY <stage> ...; INSERT INTO
  // gateway_audit_events (...) SELECT ... FROM <stage> ON CONFLICT (id,
  // "timestamp") DO NOTHING (about half the speed); COMMIT.  `rows` is
  // COPY text format, `events` rows.  Returns false (done not called) when
  // not writable().  Otherwise `done` runs exactly once, later, from the
  // loop (never from inside write()).  Failures feed the breaker;
  // connection failures reconnect with backoff.
  bool write(std::string rows, uint32_t events, bool dedupe, Done done);
  // Called whenever a connection becomes idle or the store becomes
  // writable (e.g. the database came back): the writer flushes/replays
  // then.
  void setWritableListener(std::function<void()> cb) { listener_ = std::move(cb); }
  size_t inflight() const { return inflight_; } // writes started, done not yet called
  const char* circuitState() const;             // "closed" | "open" | "half_open"
  const std::string& lastError() const { return last_error_; } // of the last failure
  // Closes every connection; pending writes get done(false, "closing").
  void close();

  struct Stats {
    uint64_t batches{0}, rows{0}, failures{0}, reconnects{0};
  };
  const Stats& stats() const { return stats_; }

private:
  enum class Job { None, Migrate, Write, Partitions, Refresh, Rollback };

  struct Slot {
    std::unique_ptr<PgConnection> conn;
    Job job{Job::None};
    Done done;
    uint32_t events{0};
    uint64_t started_us{0};
    bool ever_up{false};
  };

  Slot* idleSlot();
  void onReady(Slot& s);
  void onDown(Slot& s, std::string_view why, bool was_ready);
  // `s` has nothing to do: maintenance if due, else tell the writer.
  void becameIdle(Slot& s);
  void notifyWritable();

  void startMigrations();
  void migrate(Slot& s, size_t index);
  void migrationFailed(Slot& s, size_t index, const PgConnection::Outcome& o);
  void onMigrated();

  void onWriteDone(Slot& s, PgConnection::Outcome& o);
  // Sends ROLLBACK when a failure left a transaction open on `s`; true
  // when it did (`s` becomes idle once it is answered).
  bool endTransaction(Slot& s);

  void armPartitionsTimer();
  void armRefreshTimer(uint64_t delay_ms);
  void refreshEnded(uint64_t took_ms);
  void dispatchMaintenance();
  // Starts a due maintenance task on `s`; false when none was started.
  bool runMaintenance(Slot& s);
  void onMaintenanceDone(Slot& s, Job job, uint64_t started_us, PgConnection::Outcome& o);

  void breakerSuccess();
  void breakerFailure(std::string_view why);

  EventLoop& loop_;
  std::string conninfo_;
  std::string display_; // no password
  uint32_t pool_size_;
  uint32_t statement_timeout_ms_;
  uint64_t deadline_ms_; // statement timeout + slack, per round trip
  uint32_t cb_open_ms_;
  uint32_t refresh_every_ms_; // 0 = the summary view is not refreshed
  std::string direct_sql_; // COPY straight into the table
  std::string dedupe_sql_; // through a temporary table, skipping stored ids
  CircuitBreaker breaker_;
  std::string last_error_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::function<void()> listener_;

  bool started_{false};
  bool closed_{false};
  bool migrated_{false};
  bool migrating_{false};
  bool maintaining_{false};
  bool partitions_due_{false};
  bool refresh_due_{false};
  bool warned_unreachable_{false};
  size_t inflight_{0};
  EventLoop::TimerId partitions_timer_{0};
  EventLoop::TimerId refresh_timer_{0};
  EventLoop::TimerId half_open_timer_{0};
  EventLoop::TimerId migrate_timer_{0};
  Stats stats_;
  LogRateLimiter write_log_{10 * 1000000};
  LogRateLimiter maintenance_log_{60 * 1000000};
};

} // namespace sark
