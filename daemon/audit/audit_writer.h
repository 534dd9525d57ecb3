#pragma once

// Where audit events go after a module sent them (AUDIT_BATCH): decoded
// into COPY rows, gathered into batches of AUDIT_BATCH_SIZE events (or
// whatever arrived within AUDIT_FLUSH_INTERVAL_SECONDS), and written to
// PostgreSQL.  A batch the database cannot take now (down, breaker open,
// not configured, or the memory queue over AUDIT_QUEUE_MAX) is appended
// to the spool instead, and once anything is in the spool every later
// batch goes there too, so the spool replays in arrival order before the
// writer returns to the database.
//
// A module's batch is acknowledged (AUDIT_ACK) only when its events are
// committed or fsync'd to the spool; the module re-sends what was not
// acknowledged, and the store skips ids it already holds.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_rows.h"
#include "audit/audit_spool.h"
#include "audit/audit_store.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

class AuditWriter {
public:
  // Sends AUDIT_ACK for module batch `id` on connection `conn`.
  using AckFn = std::function<void(uint64_t conn, uint32_t id, uint8_t status,
                                   uint32_t events, std::string_view message)>;

  AuditWriter(EventLoop& loop, const Config& cfg, AuditStore& store, AuditSpool& spool);
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  void setAckFn(AckFn fn) { ack_ = std::move(fn); }

  // Opens the spool (replaying what an earlier run left) and starts the
  // store.  False when the spool directory cannot be used.
  bool start(std::string& err);

  // One AUDIT_BATCH payload.  A malformed one is acknowledged REJECTED.
  // Its invalid events (audit_rows.h) are never stored: they are kept in
  // AUDIT_SPOOL_DIR/invalid-*.copy and logged at error level; the valid
  // ones are stored and acknowledged as usual (a batch with none is
  // REJECTED, with the first event's reason).
  void onBatch(uint64_t conn, uint32_t id, uint16_t flags, const uint8_t* payload, size_t len);

  // SIGTERM: write everything held in memory, then replay the spool while
  // the database takes it.  drained() is true once nothing is left in
  // memory or in flight, and the spool is empty or the database is down.
  void beginDrain();
  bool drained();
  // Drain deadline passed: whatever is still in memory goes to the spool.
  void spoolRemaining();
  void close();

  uint64_t queuedEvents() const { return queued_events_; }

  struct Stats {
    uint64_t received{0};  // events decoded from modules
    uint64_t rejected{0};  // module batches refused as malformed
    uint64_t invalid{0};   // events refused for a field (set aside, not stored)
    uint64_t written{0};   // events committed from memory
    uint64_t spooled{0};   // events appended to the spool
    uint64_t replayed{0};  // events committed from the spool
    uint64_t refused{0};   // events the database refused for their data (set aside)
    uint64_t lost{0};      // events neither stored nor spooled (spool I/O error)
  };
  const Stats& stats() const { return stats_; }

private:
  struct Waiter {
    uint64_t conn;
    uint32_t id;
    uint32_t events;
  };
  struct Batch {
    std::string rows;
    uint32_t events{0};
    std::vector<Waiter> waiters;
    bool dedupe{false}; // some ids may be stored already (a re-sent batch)
  };

  void seal();
  void armFlushTimer();
  void pump();
  bool databaseUsable();
  void toSpool(Batch& batch);
  void replayNext();
  void acknowledge(const std::vector<Waiter>& waiters);
  static bool refusedForData(const std::string& err);
  bool setAside(const std::string& rows, uint32_t events, const std::string& why);
  bool setAsideInvalid(uint64_t conn, uint32_t batch);

  EventLoop& loop_;
  const Config& cfg_;
  AuditStore& store_;
  AuditSpool& spool_;
  AckFn ack_;

  Batch open_;                // gathering events
  std::deque<Batch> sealed_;  // waiting for a connection
  uint64_t queued_events_{0}; // in open_, sealed_ and in flight
  EventLoop::TimerId flush_timer_{0};
  bool replaying_{false};
  bool draining_{false};
  bool started_{false};
  std::string decode_err_;
  AuditRowsResult decoded_; // of the batch being taken in
  LogRateLimiter spool_log_{10'000'000};
  Stats stats_;
};

// AUDIT_ACK frame for module batch `id`.
void encodeAuditAck(std::string& out, uint32_t id, uint8_t status, uint32_t events,
                    std::string_view message);

} // namespace sark
