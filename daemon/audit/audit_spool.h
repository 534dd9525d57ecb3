#pragma once

// Append-only on-disk queue of audit batches, used while PostgreSQL cannot
// take them and replayed in order once it can.
//
// Directory layout:
//   LOCK                      flock()ed while a process uses the spool
//   spool-<20-digit seq>.log  segments, appended in sequence order
//   POSITION                  "<seq> <offset>\n": the next batch to replay
//   rejected-<seq>.log        data found damaged, kept for an operator
//   refused-*.copy            rows the database refused, kept for an operator
//   invalid-*.copy            invalid events (audit_rows.h), kept for an operator
//
// A segment is a run of records, each
//   magic u32 | length u32 | events u32 | CRC-32C u32 of rows | rows
// (big-endian).  Appends go to the newest segment, which is closed when it
// would pass the size limit or when the reader reaches it, so reading
// only ever touches closed segments.  An append is on disk (fdatasync)
// when it returns; the replay position is not synced, so after a crash a
// batch may be replayed twice (the store ignores ids it already holds).

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/handles.h"

namespace sark {

// Segments are closed once they hold this much.
constexpr uint64_t kAuditSpoolSegmentBytes = 64ull * 1024 * 1024;

// CRC-32C (Castagnoli) of `data`, continuing `crc` (0 to start).
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

class AuditSpool {
public:
  // `segment_bytes` is the size past which a segment is closed.
  explicit AuditSpool(std::string dir, uint64_t segment_bytes = kAuditSpoolSegmentBytes);
  ~AuditSpool();
  AuditSpool(const AuditSpool&) = delete;
  AuditSpool& operator=(const AuditSpool&) = delete;

  // mkdir -p dir (0700), lock it (flock on dir/LOCK, so two sarkd never
  // share one spool; failure -> false with a clear err), scan segment
  // files, read the replay position, truncate a torn record at the end of
  // the last segment (left by a crash during an append), and count the
  // pending batches and events.
  bool open(std::string& err);
  bool isOpen() const { return open_; }
  const std::string& dir() const { return dir_; }

  // Nothing left to replay.
  bool empty() const;
  uint64_t pendingBatches() const { return pending_batches_; }
  uint64_t pendingEvents() const { return pending_events_; }

  // Appends one batch as one record and fdatasync()s it before returning
  // true.  False on any I/O error (err names the file and the error, e.g.
  // "No space left on device"); nothing of the record remains then.
  bool append(std::string_view rows, uint32_t events, std::string& err);

  // The oldest batch not yet consumed, without removing it.  False when
  // there is none (err empty) or on a read error (err set).  A damaged
  // record is logged, the rest of its segment moved to rejected-<seq>.log,
  // and reading goes on with the next segment.
  bool peek(std::string& rows, uint32_t& events, std::string& err);

  // The batch last returned by peek() is stored: move past it, and delete
  // its segment once it is fully read.
  void consume();
  // Keeps rows that must not be stored as they are in
  // dir/<kind>-<unix ms>-<n>.copy, as COPY text an operator can load after
  // fixing them, and fdatasync()s the file: a batch the database refuses
  // for its data ("refused": it would be refused on every retry), or the
  // invalid events of a batch ("invalid").  False on an I/O error.
  bool setAside(std::string_view rows, std::string& path, std::string& err,
                const char* kind = "refused");

  void close();

private:
  struct Segment {
    uint64_t seq;
    uint64_t batches; // not yet consumed
    uint64_t events;
    bool damaged;     // holds bytes that are not records
  };
  std::string segmentName(uint64_t seq) const;
  bool loadSegments(std::string& err);
  bool scanSegment(Segment& seg, uint64_t pos, bool last, uint64_t& start_off, std::string& err);
  bool openActive(std::string& err);
  void closeActive();
  bool rejectRest(const char* why, std::string& err);
  void finishSegment();
  void persistPosition();
  void dropCounts(const Segment& seg);

  std::string dir_;
  uint64_t segment_bytes_;
  bool open_{false};
  UniqueFd dir_fd_;
  UniqueFd lock_fd_;

  // Segments with data not yet consumed, oldest first; the one being
  // appended to (if any) is the last.
  std::deque<Segment> segments_;
  uint64_t next_seq_{1};
  uint64_t damaged_{0};

  UniqueFd active_fd_;
  uint64_t active_seq_{0};
  uint64_t active_size_{0};

  // Replay position: segments_.front() (or next_seq_ when there is none)
  // at read_off_.
  UniqueFd read_fd_;
  uint64_t read_off_{0};
  uint64_t read_size_{0};
  bool peeked_{false};
  uint64_t peeked_bytes_{0};
  uint32_t peeked_events_{0};

  uint64_t pending_batches_{0};
  uint64_t pending_events_{0};
  uint64_t set_aside_{0};
};

} // namespace sark
