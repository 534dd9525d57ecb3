#include "audit/audit_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "audit/audit_rows.h"
#include "audit/audit_schema.h"
#include "core/clock.h"

namespace sark {
namespace {

constexpr uint64_t kPartitionsEveryMs = 3600 * 1000;
constexpr uint64_t kPartitionsRetryMs = 60 * 1000;
constexpr uint64_t kMigrationRetryMs = 10 * 1000;
// statement_timeout of migrations and maintenance (at least): they may
// wait for the advisory lock held by another sarkd, or scan the table.
constexpr uint32_t kSlowStatementMs = 120 * 1000;
constexpr const char* kStage = "sark_audit_stage";
// The summary view's refresh reads the whole table: the next one starts
// AUDIT_SUMMARY_REFRESH_SECONDS after the last one ended, and at least this
// many times its duration later, so that on a large table refreshes take at
// most a fifth of the database's time instead of following each other.
constexpr uint64_t kRefreshPauseFactor = 4;

// How long a round trip may take beyond the server's statement_timeout
// before the connection is taken for stalled.
uint64_t withSlack(uint64_t timeout_ms) {
  return timeout_ms + std::max<uint64_t>(1000, timeout_ms / 2);
}

// The last result, or null.
const PGresult* lastResult(const PgConnection::Outcome& o) {
  return o.results.empty() ? nullptr : o.results.back().get();
}

bool committed(const PgConnection::Outcome& o) {
  const PGresult* r = lastResult(o);
  return o.ok && r != nullptr && strcmp(PQcmdStatus(const_cast<PGresult*>(r)), "COMMIT") == 0;
}

// Rows affected by the first statement whose tag starts with `verb`
// ("COPY", "INSERT"), or -1.
long long affected(const PgConnection::Outcome& o, const char* verb) {
  size_t n = strlen(verb);
  for (const PgResultPtr& r : o.results) {
    if (strncmp(PQcmdStatus(r.get()), verb, n) == 0) {
      return strtoll(PQcmdTuples(r.get()), nullptr, 10);
    }
  }
  return -1;
}

// A statement rejected for its data (class 22, data exception; 23,
// integrity constraint violation): the database is fine, the batch is not.
bool dataError(const std::string& sqlstate) {
  return sqlstate.size() == 5 && sqlstate[0] == '2' && (sqlstate[1] == '2' || sqlstate[1] == '3');
}

uint64_t elapsedMs(uint64_t since_us) { return (monotonicUs() - since_us) / 1000; }

} // namespace

AuditStore::AuditStore(EventLoop& loop, const Config& cfg)
    : loop_(loop), conninfo_(cfg.database_url), pool_size_(cfg.database_pool_size),
      statement_timeout_ms_(cfg.database_statement_timeout_ms),
      deadline_ms_(withSlack(cfg.database_statement_timeout_ms)),
      cb_open_ms_(cfg.database_cb_open_ms), refresh_every_ms_(cfg.audit_summary_refresh_ms),
      breaker_(cfg.database_cb_threshold, cfg.database_cb_open_ms, cfg.database_cb_half_open) {
  std::string cols = kAuditCopyColumns;
  std::string begin = std::string("BEGIN; SET LOCAL statement_timeout = ") +
                      std::to_string(statement_timeout_ms_) + "; ";
  direct_sql_ = begin + "COPY gateway_audit_events (" + cols + ") FROM STDIN; COMMIT";
  dedupe_sql_ = begin + "CREATE TEMP TABLE " + kStage +
                " (LIKE gateway_audit_events INCLUDING DEFAULTS) ON COMMIT DROP; COPY " + kStage +
                " (" + cols + ") FROM STDIN; INSERT INTO gateway_audit_events (" + cols +
                ") SELECT " + cols + " FROM " + kStage +
                " ON CONFLICT (id, \"timestamp\") DO NOTHING; COMMIT";
  if (configured()) {
    display_ = pgDisplayName(conninfo_);
  }
}

AuditStore::~AuditStore() {
  closed_ = true;
  for (EventLoop::TimerId t : {partitions_timer_, refresh_timer_, half_open_timer_, migrate_timer_}) {
    loop_.cancelTimer(t);
  }
  for (auto& s : slots_) {
    s->done = nullptr;
    s->conn->close();
  }
}

void AuditStore::start() {
  if (!configured() || started_ || closed_) {
    return;
  }
  started_ = true;
  LogLine(LogLevel::Info, "audit store starting")
      .str("database", display_)
      .unum("pool_size", pool_size_);
  for (uint32_t i = 0; i < pool_size_; i++) {
    auto s = std::make_unique<Slot>();
    Slot* raw = s.get();
    s->conn = std::make_unique<PgConnection>(loop_, conninfo_, display_, deadline_ms_,
                                             "audit-" + std::to_string(i));
    s->conn->setCallbacks([this, raw]() { onReady(*raw); },
                          [this, raw](std::string_view why, bool was_ready) {
                            onDown(*raw, why, was_ready);
                          });
    slots_.push_back(std::move(s));
  }
  for (auto& s : slots_) {
    s->conn->start();
  }
}

AuditStore::Slot* AuditStore::idleSlot() {
  for (auto& s : slots_) {
    if (s->job == Job::None && s->conn->ready()) {
      return s.get();
    }
  }
  return nullptr;
}

bool AuditStore::writable() {
  return started_ && !closed_ && migrated_ && idleSlot() != nullptr &&
         breaker_.wouldAllow(monotonicUs());
}

const char* AuditStore::circuitState() const {
  CircuitBreaker::State st = breaker_.state();
  if (st == CircuitBreaker::State::Open && breaker_.wouldAllow(monotonicUs())) {
    return CircuitBreaker::name(CircuitBreaker::State::HalfOpen);
  }
  return CircuitBreaker::name(st);
}

void AuditStore::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  for (EventLoop::TimerId t : {partitions_timer_, refresh_timer_, half_open_timer_, migrate_timer_}) {
    loop_.cancelTimer(t);
  }
  partitions_timer_ = refresh_timer_ = half_open_timer_ = migrate_timer_ = 0;
  std::vector<Done> pending;
  for (auto& s : slots_) {
    if (s->job == Job::Write && s->done) {
      pending.push_back(std::move(s->done));
    }
    s->done = nullptr;
    s->job = Job::None;
    s->conn->close();
  }
  inflight_ = 0;
  if (started_) {
    LogLine(LogLevel::Info, "audit store closed")
        .unum("batches", stats_.batches)
        .unum("rows", stats_.rows)
        .unum("failures", stats_.failures)
        .unum("abandoned_writes", pending.size());
  }
  for (Done& d : pending) {
    d(false, "closing");
  }
}

// ---------------------------------------------------------------- connections

void AuditStore::onReady(Slot& s) {
  if (closed_) {
    return;
  }
  if (s.ever_up) {
    stats_.reconnects++;
  }
  s.ever_up = true;
  warned_unreachable_ = false;
  s.job = Job::None;
  if (!migrated_) {
    startMigrations();
    return;
  }
  becameIdle(s);
}

void AuditStore::onDown(Slot& s, std::string_view why, bool was_ready) {
  // A job in flight already failed through its query callback.
  s.job = Job::None;
  if (closed_ || was_ready) {
    return; // a lost connection that was busy counted as a failed write
  }
  bool any_up = false;
  for (const auto& other : slots_) {
    any_up = any_up || other->conn->connected();
  }
  if (!any_up && !warned_unreachable_) {
    warned_unreachable_ = true;
    LogLine(LogLevel::Warn, "audit database unreachable; events go to the spool")
        .str("database", display_)
        .str("error", why);
  }
  breakerFailure(why);
}

void AuditStore::becameIdle(Slot& s) {
  if (closed_ || s.job != Job::None || !s.conn->ready() || !migrated_) {
    return;
  }
  if (runMaintenance(s)) {
    return;
  }
  notifyWritable();
}

void AuditStore::notifyWritable() {
  if (listener_ && !closed_ && migrated_) {
    listener_();
  }
}

// ---------------------------------------------------------------- migrations

void AuditStore::startMigrations() {
  if (migrated_ || migrating_ || closed_ || migrate_timer_ != 0) {
    return;
  }
  Slot* s = idleSlot();
  if (s == nullptr) {
    return; // the next connection that comes up starts them
  }
  migrating_ = true;
  migrate(*s, 0);
}

void AuditStore::migrate(Slot& s, size_t index) {
  const std::vector<Migration>& all = auditMigrations();
  if (index == all.size()) {
    s.job = Job::None;
    migrating_ = false;
    onMigrated();
    return;
  }
  const Migration& m = all[index];
  s.job = Job::Migrate;
  uint64_t deadline = withSlack(kSlowStatementMs);
  bool sent = s.conn->query(
      migrationCheckSql(m, kSlowStatementMs), {}, deadline,
      [this, &s, index, deadline](PgConnection::Outcome& o) {
        const PGresult* r = lastResult(o);
        if (!o.ok || r == nullptr) {
          migrationFailed(s, index, o);
          return;
        }
        if (PQntuples(r) > 0) {
          // Applied before (by us or another sarkd).
          bool next = s.conn->query("COMMIT", {}, deadline, [this, &s, index](PgConnection::Outcome& c) {
            if (!committed(c)) {
              migrationFailed(s, index, c);
              return;
            }
            migrate(s, index + 1);
          });
          if (!next) {
            migrationFailed(s, index, o);
          }
          return;
        }
        const Migration& mig = auditMigrations()[index];
        uint64_t started = monotonicUs();
        bool next = s.conn->query(
            migrationApplySql(mig), {}, deadline,
            [this, &s, index, started](PgConnection::Outcome& a) {
              if (!committed(a)) {
                migrationFailed(s, index, a);
                return;
              }
              const Migration& done = auditMigrations()[index];
              LogLine(LogLevel::Info, "audit schema migration applied")
                  .num("version", done.version)
                  .str("name", done.name)
                  .unum("ms", elapsedMs(started))
                  .str("database", display_);
              migrate(s, index + 1);
            });
        if (!next) {
          migrationFailed(s, index, o);
        }
      });
  if (!sent) {
    PgConnection::Outcome o;
    o.conn_lost = true;
    o.error = "connection not ready";
    migrationFailed(s, index, o);
  }
}

void AuditStore::migrationFailed(Slot& s, size_t index, const PgConnection::Outcome& o) {
  const Migration& m = auditMigrations()[index];
  migrating_ = false;
  s.job = Job::None;
  if (closed_) {
    return;
  }
  LogLine(o.conn_lost ? LogLevel::Warn : LogLevel::Error, "audit schema migration failed")
      .num("version", m.version)
      .str("name", m.name)
      .str("error", o.error.empty() ? "not committed" : o.error)
      .str("database", display_);
  if (o.conn_lost) {
    startMigrations(); // on another connection, or the next to come up
    return;
  }
  // A failure of the SQL itself: try again later, not in a loop.
  endTransaction(s);
  migrate_timer_ = loop_.addTimer(kMigrationRetryMs, [this]() {
    migrate_timer_ = 0;
    startMigrations();
  });
}

void AuditStore::onMigrated() {
  migrated_ = true;
  LogLine(LogLevel::Info, "audit schema ready")
      .num("version", auditMigrations().back().version)
      .str("database", display_);
  // Partitions are checked at every start (the last run may be months ago).
  partitions_due_ = true;
  armPartitionsTimer();
  armRefreshTimer(refresh_every_ms_);
  for (auto& s : slots_) {
    becameIdle(*s);
    if (closed_) {
      return;
    }
  }
}

// ---------------------------------------------------------------- writes

bool AuditStore::write(std::string rows, uint32_t events, bool dedupe, Done done) {
  if (!started_ || closed_ || !migrated_) {
    return false;
  }
  Slot* s = idleSlot();
  if (s == nullptr || !breaker_.allow(monotonicUs())) {
    return false;
  }
  s->job = Job::Write;
  s->done = std::move(done);
  s->events = events;
  s->started_us = monotonicUs();
  Slot* raw = s;
  if (!s->conn->query(dedupe ? dedupe_sql_ : direct_sql_, std::move(rows), deadline_ms_,
                      [this, raw](PgConnection::Outcome& o) { onWriteDone(*raw, o); })) {
    // Not reached: the slot was idle and its connection ready.
    breaker_.onCancel();
    s->job = Job::None;
    s->done = nullptr;
    return false;
  }
  inflight_++;
  return true;
}

void AuditStore::onWriteDone(Slot& s, PgConnection::Outcome& o) {
  Done done = std::move(s.done);
  s.done = nullptr;
  s.job = Job::None;
  inflight_--;
  uint64_t ms = elapsedMs(s.started_us);
  std::string err;
  bool ok = committed(o);
  if (ok) {
    stats_.batches++;
    stats_.rows += s.events;
    long long inserted = affected(o, "INSERT");
    if (inserted >= 0 && inserted < static_cast<long long>(s.events)) {
      LogLine(LogLevel::Debug, "audit rows already stored; skipped")
          .unum("events", s.events)
          .num("inserted", inserted)
          .num("skipped", static_cast<long long>(s.events) - inserted);
    }
    LogLine(LogLevel::Debug, "audit batch written")
        .str("conn", s.conn->name())
        .unum("events", s.events)
        .num("inserted", inserted)
        .unum("ms", ms);
    breakerSuccess();
  } else {
    stats_.failures++;
    err = o.error.empty() ? "transaction not committed" : o.error;
    uint64_t suppressed = 0;
    if (write_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "audit batch write failed")
          .str("conn", s.conn->name())
          .unum("events", s.events)
          .unum("ms", ms)
          .str("error", err)
          .unum("suppressed", suppressed);
    }
    if (dataError(o.sqlstate)) {
      breakerSuccess(); // the database answered; the batch was bad
    } else {
      breakerFailure(err);
    }
  }
  // Before the writer runs: close a transaction a failure left open, or
  // claim the connection for due maintenance (which would starve under a
  // steady stream of writes otherwise).
  bool busy = (!ok && endTransaction(s)) || runMaintenance(s);
  if (done) {
    done(ok, err);
  }
  if (!busy) {
    becameIdle(s);
  }
}

bool AuditStore::endTransaction(Slot& s) {
  PGTransactionStatusType ts = s.conn->transactionStatus();
  if (closed_ || (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)) {
    return false;
  }
  Job was = s.job;
  s.job = Job::Rollback;
  bool sent = s.conn->query("ROLLBACK", {}, deadline_ms_, [this, &s](PgConnection::Outcome& o) {
    s.job = Job::None;
    if (!o.ok && !o.conn_lost) {
      LogLine(LogLevel::Warn, "audit ROLLBACK failed").str("error", o.error);
    }
    becameIdle(s);
  });
  if (!sent) {
    s.job = was;
  }
  return sent;
}

// ---------------------------------------------------------------- maintenance

void AuditStore::armPartitionsTimer() {
  loop_.cancelTimer(partitions_timer_);
  partitions_timer_ = loop_.addTimer(kPartitionsEveryMs, [this]() {
    partitions_timer_ = 0;
    partitions_due_ = true;
    armPartitionsTimer();
    dispatchMaintenance();
  });
}

// Armed again only when the refresh it starts has ended (refreshEnded()).
void AuditStore::armRefreshTimer(uint64_t delay_ms) {
  loop_.cancelTimer(refresh_timer_);
  refresh_timer_ = 0;
  if (refresh_every_ms_ == 0 || closed_) {
    return; // AUDIT_SUMMARY_REFRESH_SECONDS=0: refreshed by the operator
  }
  refresh_timer_ = loop_.addTimer(delay_ms, [this]() {
    refresh_timer_ = 0;
    refresh_due_ = true;
    dispatchMaintenance();
  });
}

void AuditStore::refreshEnded(uint64_t took_ms) {
  uint64_t next_ms = std::max<uint64_t>(refresh_every_ms_, kRefreshPauseFactor * took_ms);
  if (next_ms > refresh_every_ms_) {
    LogLine(LogLevel::Warn, "audit hourly view refresh is slow; the next one waits longer")
        .unum("ms", took_ms)
        .unum("next_in_ms", next_ms)
        .str("hint", "raise AUDIT_SUMMARY_REFRESH_SECONDS, or set it to 0 and refresh off-peak");
  }
  armRefreshTimer(next_ms);
}

void AuditStore::dispatchMaintenance() {
  if (Slot* s = idleSlot(); s != nullptr) {
    runMaintenance(*s);
  }
}

bool AuditStore::runMaintenance(Slot& s) {
  if (closed_ || !migrated_ || maintaining_ || s.job != Job::None || !s.conn->ready()) {
    return false;
  }
  Job job;
  const char* sql;
  if (partitions_due_) {
    job = Job::Partitions;
    sql = kAuditEnsurePartitionsSql;
    partitions_due_ = false;
  } else if (refresh_due_) {
    job = Job::Refresh;
    sql = kAuditRefreshHourlySql;
    refresh_due_ = false;
  } else {
    return false;
  }
  uint32_t timeout = std::max(kSlowStatementMs, statement_timeout_ms_);
  std::string text = "BEGIN; SET LOCAL statement_timeout = " + std::to_string(timeout) + "; " +
                     sql + "; COMMIT";
  uint64_t started = monotonicUs();
  bool sent = s.conn->query(std::move(text), {}, withSlack(timeout),
                            [this, &s, job, started](PgConnection::Outcome& o) {
                              onMaintenanceDone(s, job, started, o);
                            });
  if (!sent) {
    (job == Job::Partitions ? partitions_due_ : refresh_due_) = true;
    return false;
  }
  s.job = job;
  maintaining_ = true;
  return true;
}

void AuditStore::onMaintenanceDone(Slot& s, Job job, uint64_t started_us,
                                   PgConnection::Outcome& o) {
  maintaining_ = false;
  s.job = Job::None;
  const char* what = job == Job::Partitions ? "partitions" : "hourly_view";
  if (job == Job::Refresh) {
    refreshEnded(elapsedMs(started_us));
  }
  if (committed(o)) {
    if (job == Job::Partitions) {
      long long created = -1;
      for (const PgResultPtr& r : o.results) {
        if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1) {
          created = strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
        }
      }
      LogLine(created > 0 ? LogLevel::Info : LogLevel::Debug, "audit partitions checked")
          .num("created", created)
          .unum("ms", elapsedMs(started_us));
    } else {
      LogLine(LogLevel::Debug, "audit hourly view refreshed").unum("ms", elapsedMs(started_us));
    }
  } else {
    uint64_t suppressed = 0;
    if (maintenance_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "audit maintenance failed")
          .str("task", what)
          .str("error", o.error.empty() ? "not committed" : o.error)
          .unum("suppressed", suppressed);
    }
    if (job == Job::Partitions && !closed_) {
      // Retried within the hour; the default partition holds rows meanwhile.
      loop_.cancelTimer(partitions_timer_);
      partitions_timer_ = loop_.addTimer(kPartitionsRetryMs, [this]() {
        partitions_timer_ = 0;
        partitions_due_ = true;
        armPartitionsTimer();
        dispatchMaintenance();
      });
    }
  }
  if (!endTransaction(s)) {
    becameIdle(s);
  }
}

// ---------------------------------------------------------------- breaker

void AuditStore::breakerSuccess() {
  if (breaker_.onSuccess()) {
    LogLine(LogLevel::Info, "audit circuit breaker closed").str("database", display_);
  }
}

void AuditStore::breakerFailure(std::string_view why) {
  last_error_.assign(why);
  if (!breaker_.onFailure(monotonicUs())) {
    return;
  }
  LogLine(LogLevel::Warn, "audit circuit breaker open")
      .str("database", display_)
      .str("error", why)
      .unum("retry_after_ms", cb_open_ms_);
  loop_.cancelTimer(half_open_timer_);
  half_open_timer_ = loop_.addTimer(cb_open_ms_ + 1, [this]() {
    half_open_timer_ = 0;
    if (closed_ || !breaker_.wouldAllow(monotonicUs())) {
      return;
    }
    LogLine(LogLevel::Info, "audit circuit breaker half-open; trying the database")
        .str("database", display_);
    notifyWritable();
  });
}

} // namespace sark
