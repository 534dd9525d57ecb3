#include "audit/audit_writer.h"

#include <memory>
#include <utility>

#include "core/clock.h"
#include "proto/frame_builder.h"
#include "sark_proto.h"

namespace sark {

AuditWriter::AuditWriter(EventLoop& loop, const Config& cfg, AuditStore& store,
                         AuditSpool& spool)
    : loop_(loop), cfg_(cfg), store_(store), spool_(spool) {}

bool AuditWriter::start(std::string& err) {
  if (!spool_.open(err)) {
    err = "AUDIT_SPOOL_DIR " + cfg_.audit_spool_dir + ": " + err;
    return false;
  }
  if (!spool_.empty()) {
    LogLine(LogLevel::Info, "audit spool holds events from an earlier run; replaying them first")
        .unum("batches", spool_.pendingBatches())
        .unum("events", spool_.pendingEvents());
  }
  if (!store_.configured()) {
    LogLine(LogLevel::Warn, "DATABASE_URL is empty: audit events are kept in the spool")
        .str("spool", cfg_.audit_spool_dir);
  }
  store_.setWritableListener([this]() { pump(); });
  store_.start();
  started_ = true;
  return true;
}

void AuditWriter::onBatch(uint64_t conn, uint32_t id, uint16_t flags, const uint8_t* payload,
                          size_t len) {
  const size_t rows_before = open_.rows.size();
  if (!appendAuditRows(payload, len, open_.rows, decoded_, decode_err_)) {
    stats_.rejected++;
    LogLine(LogLevel::Warn, "audit batch rejected")
        .unum("conn", conn)
        .unum("batch", id)
        .str("error", decode_err_);
    if (ack_) {
      ack_(conn, id, SARK_ACK_REJECTED, 0, decode_err_);
    }
    return;
  }
  if (!decoded_.invalid.empty() && !setAsideInvalid(conn, id)) {
    // Not kept anywhere: take nothing of the batch and leave it with the
    // module, which sends it again.
    open_.rows.resize(rows_before);
    return;
  }
  const uint32_t events = decoded_.events;
  if (events == 0) {
    // Every event was invalid: nothing to store.  Rejected, so the module
    // forgets it (the audit API answers 400 with the reason).
    if (ack_) {
      const AuditInvalidEvent& first = decoded_.invalid.front();
      ack_(conn, id, SARK_ACK_REJECTED, 0,
           "event " + std::to_string(first.event) + ": " + first.reason);
    }
    return;
  }
  stats_.received += events;
  queued_events_ += events;
  open_.events += events;
  open_.waiters.push_back(Waiter{conn, id, events});
  if (open_.events >= cfg_.audit_batch_size || (flags & SARK_AUDIT_F_URGENT) != 0 || draining_) {
    seal();
    pump();
    return;
  }
  armFlushTimer();
}

void AuditWriter::armFlushTimer() {
  if (flush_timer_ == 0) {
    flush_timer_ = loop_.addTimer(cfg_.audit_flush_interval_ms, [this]() {
      flush_timer_ = 0;
      seal();
      pump();
    });
  }
}

void AuditWriter::seal() {
  loop_.cancelTimer(flush_timer_);
  flush_timer_ = 0;
  if (open_.events == 0) {
    return;
  }
  sealed_.push_back(std::move(open_));
  open_ = Batch{};
}

// Whether sealed batches should wait for the database (true) or go to
// the spool now (false).
bool AuditWriter::databaseUsable() {
  if (!store_.configured() || !spool_.empty() || replaying_) {
    return false; // no database, or the spool must replay first (order)
  }
  if (store_.writable()) {
    return true;
  }
  // Not writable with writes in flight: every connection is busy; wait,
  // unless the memory queue is over its bound.  Not writable with nothing
  // in flight: the database is down, still connecting, or its breaker is
  // open.
  return store_.inflight() > 0 && queued_events_ <= cfg_.audit_queue_max;
}

void AuditWriter::pump() {
  while (!sealed_.empty()) {
    if (!databaseUsable()) {
      Batch b = std::move(sealed_.front());
      sealed_.pop_front();
      toSpool(b);
      continue;
    }
    if (!store_.writable()) {
      break; // a connection coming free calls pump() again
    }
    auto b = std::make_shared<Batch>(std::move(sealed_.front()));
    sealed_.pop_front();
    // The rows are copied: a failed write spools them.
    store_.write(b->rows, b->events, b->dedupe, [this, b](bool ok, const std::string& err) {
      if (!ok && !b->dedupe && err.starts_with("23505")) {
        // An id already stored: a module re-sent events sarkd had written
        // before it lost the connection.  Write the batch again, skipping
        // the stored ids.
        b->dedupe = true;
        sealed_.push_front(std::move(*b));
      } else if (ok) {
        stats_.written += b->events;
        queued_events_ -= b->events;
        acknowledge(b->waiters);
      } else if (refusedForData(err)) {
        queued_events_ -= b->events;
        if (setAside(b->rows, b->events, err)) {
          acknowledge(b->waiters);
        }
      } else {
        LogLine(LogLevel::Warn, "audit batch not written; spooling it")
            .unum("events", b->events)
            .str("error", err);
        toSpool(*b);
      }
      pump();
    });
  }
  if (sealed_.empty()) {
    replayNext();
  }
}

void AuditWriter::toSpool(Batch& b) {
  std::string err;
  queued_events_ -= b.events;
  if (spool_.append(b.rows, b.events, err)) {
    stats_.spooled += b.events;
    uint64_t suppressed = 0;
    if (spool_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Info, "audit events spooled")
          .unum("spool_events", spool_.pendingEvents())
          .unum("spool_batches", spool_.pendingBatches())
          .str("database", store_.configured() ? store_.circuitState() : "not configured");
    }
    acknowledge(b.waiters);
    return;
  }
  // Neither stored nor spooled: the modules keep these events (no ack) and
  // send them again after their call times out.
  stats_.lost += b.events;
  LogLine(LogLevel::Error, "audit spool write failed; events left with the modules")
      .unum("events", b.events)
      .str("error", err);
}

void AuditWriter::replayNext() {
  if (replaying_ || spool_.empty() || !store_.configured() || !store_.writable()) {
    return;
  }
  std::string rows;
  uint32_t events = 0;
  std::string err;
  if (!spool_.peek(rows, events, err)) {
    if (!err.empty()) {
      LogLine(LogLevel::Error, "audit spool read failed").str("error", err);
    }
    return;
  }
  replaying_ = true;
  auto copy = std::make_shared<std::string>(rows);
  store_.write(std::move(rows), events, true, [this, events, copy](bool ok, const std::string& e) {
    replaying_ = false;
    if (!ok && refusedForData(e) && setAside(*copy, events, e)) {
      spool_.consume();
    } else if (ok) {
      spool_.consume();
      stats_.replayed += events;
      if (spool_.empty()) {
        LogLine(LogLevel::Info, "audit spool replayed").unum("events", stats_.replayed);
      }
    } else {
      LogLine(LogLevel::Warn, "audit spool replay failed; will retry").str("error", e);
    }
    pump();
  });
}

// A SQLSTATE of class 22 (data exception) or 23 (integrity constraint):
// the database is up but refuses these rows, now and on every retry.
bool AuditWriter::refusedForData(const std::string& err) {
  return err.size() > 5 && err[5] == ':' && err[0] == '2' && (err[1] == '2' || err[1] == '3');
}

bool AuditWriter::setAside(const std::string& rows, uint32_t events, const std::string& why) {
  std::string path;
  std::string err;
  if (!spool_.setAside(rows, path, err)) {
    stats_.lost += events;
    LogLine(LogLevel::Error, "audit batch refused by the database and cannot be set aside")
        .unum("events", events)
        .str("reason", why)
        .str("error", err);
    return false;
  }
  stats_.refused += events;
  LogLine(LogLevel::Error, "audit batch refused by the database; kept for an operator")
      .unum("events", events)
      .str("reason", why)
      .str("file", path);
  return true;
}

// Keeps the invalid events of the batch just decoded for an operator
// (AUDIT_SPOOL_DIR/invalid-*.copy) and says why each one was refused.
bool AuditWriter::setAsideInvalid(uint64_t conn, uint32_t batch) {
  constexpr size_t kLoggedPerBatch = 8;
  const auto n = static_cast<uint32_t>(decoded_.invalid.size());
  std::string path;
  std::string err;
  if (!spool_.setAside(decoded_.invalid_rows, path, err, "invalid")) {
    LogLine(LogLevel::Error, "invalid audit events cannot be set aside; batch left with the module")
        .unum("conn", conn)
        .unum("batch", batch)
        .unum("invalid_events", n)
        .str("error", err);
    return false;
  }
  stats_.invalid += n;
  for (size_t i = 0; i < n && i < kLoggedPerBatch; i++) {
    const AuditInvalidEvent& e = decoded_.invalid[i];
    LogLine(LogLevel::Error, "invalid audit event not stored; set aside")
        .unum("conn", conn)
        .unum("batch", batch)
        .unum("event", e.event)
        .str("id", e.id)
        .str("field", e.field)
        .str("reason", e.reason)
        .str("file", path);
  }
  if (n > kLoggedPerBatch) {
    LogLine(LogLevel::Error, "more invalid audit events in the batch; set aside")
        .unum("conn", conn)
        .unum("batch", batch)
        .unum("not_shown", n - kLoggedPerBatch)
        .str("file", path);
  }
  return true;
}

void AuditWriter::acknowledge(const std::vector<Waiter>& waiters) {
  if (!ack_) {
    return;
  }
  for (const Waiter& w : waiters) {
    ack_(w.conn, w.id, SARK_ACK_DURABLE, w.events, {});
  }
}

void AuditWriter::beginDrain() {
  draining_ = true;
  seal();
  pump();
}

bool AuditWriter::drained() {
  if (open_.events != 0 || !sealed_.empty() || store_.inflight() != 0 || replaying_) {
    return false;
  }
  // With the database able to take it, the spool is replayed before exit.
  return spool_.empty() || !store_.configured() || !store_.writable();
}

void AuditWriter::spoolRemaining() {
  seal();
  while (!sealed_.empty()) {
    Batch b = std::move(sealed_.front());
    sealed_.pop_front();
    toSpool(b);
  }
}

void AuditWriter::close() {
  loop_.cancelTimer(flush_timer_);
  flush_timer_ = 0;
  if (started_) {
    spoolRemaining();
    store_.close(); // in-flight writes fail and are spooled
    spool_.close();
  }
}

void encodeAuditAck(std::string& out, uint32_t id, uint8_t status, uint32_t events,
                    std::string_view message) {
  FrameBuilder f(out, SARK_MSG_AUDIT_ACK, id);
  f.u8(SARK_ACK_STATUS, status);
  f.u32(SARK_ACK_EVENTS, events);
  if (!message.empty()) {
    f.str(SARK_ACK_MESSAGE, message.substr(0, 1024));
  }
  f.finish();
}

} // namespace sark
