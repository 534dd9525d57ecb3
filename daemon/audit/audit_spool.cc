#include "audit/audit_spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/log.h"
#include "sark_proto.h"

namespace sark {
namespace {

constexpr uint32_t kRecordMagic = 0x534b4155; // "SKAU"
constexpr size_t kHeaderBytes = 16;
// Largest rows a record may hold; a larger length is damage.
constexpr uint64_t kMaxRecordBytes = 256ull * 1024 * 1024;

constexpr char kLockName[] = "LOCK";
constexpr char kPositionName[] = "POSITION";
constexpr char kPositionTmpName[] = "POSITION.tmp";
constexpr std::string_view kSegmentPrefix = "spool-";
constexpr std::string_view kSegmentSuffix = ".log";
constexpr size_t kSeqDigits = 20;

constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) {
      c = (c & 1) != 0 ? (c >> 1) ^ 0x82f63b78u : c >> 1; // reflected Castagnoli
    }
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

std::string errnoText(int e) { return strerror(e); }

// "spool-<20 digits>.log" -> its sequence number.
bool parseSegmentName(std::string_view name, uint64_t& seq) {
  if (name.size() != kSegmentPrefix.size() + kSeqDigits + kSegmentSuffix.size() ||
      name.substr(0, kSegmentPrefix.size()) != kSegmentPrefix ||
      name.substr(kSegmentPrefix.size() + kSeqDigits) != kSegmentSuffix) {
    return false;
  }
  std::string_view digits = name.substr(kSegmentPrefix.size(), kSeqDigits);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  return r.ec == std::errc() && r.ptr == digits.data() + digits.size();
}

bool makeDirs(const std::string& path, std::string& err) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') {
      continue;
    }
    std::string part = path.substr(0, i);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      err = "cannot create " + part + ": " + errnoText(errno);
      return false;
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    err = "cannot use " + path + ": " + errnoText(errno);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    err = path + " is not a directory";
    return false;
  }
  return true;
}

// Reads exactly n bytes at `off`; false with errno set (EIO for a file
// shorter than expected).
bool readAt(int fd, void* buf, size_t n, uint64_t off) {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    if (r == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(r);
  }
  return true;
}

// Writes the header and body at `off`, continuing after short writes.
bool writeAt(int fd, const uint8_t* hdr, size_t hlen, std::string_view body, uint64_t off) {
  const size_t total = hlen + body.size();
  size_t done = 0;
  while (done < total) {
    struct iovec iov[2];
    int count = 0;
    if (done < hlen) {
      iov[count++] = {const_cast<uint8_t*>(hdr) + done, hlen - done};
      iov[count++] = {const_cast<char*>(body.data()), body.size()};
    } else {
      iov[count++] = {const_cast<char*>(body.data()) + (done - hlen), total - done};
    }
    ssize_t w = pwritev(fd, iov, count, static_cast<off_t>(off + done));
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    if (w == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(w);
  }
  return true;
}

struct RecordHeader {
  uint32_t magic;
  uint32_t length;
  uint32_t events;
  uint32_t crc;
};

RecordHeader decodeHeader(const uint8_t* p) {
  return RecordHeader{sark_get_u32(p), sark_get_u32(p + 4), sark_get_u32(p + 8),
                      sark_get_u32(p + 12)};
}

// Why a header at `off` of a file of `size` bytes cannot start a record,
// or nullptr when it can.
const char* headerProblem(const RecordHeader& h, uint64_t off, uint64_t size) {
  if (h.magic != kRecordMagic) {
    return "bad record magic";
  }
  if (h.length > kMaxRecordBytes || h.length > size - off - kHeaderBytes) {
    return "record longer than the rest of the segment";
  }
  return nullptr;
}

} // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) {
  crc = ~crc;
  for (char ch : data) {
    crc = kCrcTable[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

AuditSpool::AuditSpool(std::string dir, uint64_t segment_bytes)
    : dir_(std::move(dir)), segment_bytes_(segment_bytes) {}

AuditSpool::~AuditSpool() { close(); }

std::string AuditSpool::segmentName(uint64_t seq) const {
  char buf[40];
  snprintf(buf, sizeof(buf), "spool-%020" PRIu64 ".log", seq);
  return buf;
}

bool AuditSpool::open(std::string& err) {
  close();
  if (dir_.empty()) {
    err = "no spool directory given";
    return false;
  }
  if (!makeDirs(dir_, err)) {
    return false;
  }
  dir_fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_) {
    err = "cannot open " + dir_ + ": " + errnoText(errno);
    return false;
  }
  lock_fd_.reset(openat(dir_fd_.get(), kLockName, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_) {
    err = "cannot open " + dir_ + "/" + kLockName + ": " + errnoText(errno);
    close();
    return false;
  }
  if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      err = "spool directory " + dir_ + " is in use by another process (" + dir_ + "/" +
            kLockName + " is locked)";
    } else {
      err = "cannot lock " + dir_ + "/" + kLockName + ": " + errnoText(errno);
    }
    close();
    return false;
  }
  if (!loadSegments(err)) {
    close();
    return false;
  }
  open_ = true;
  return true;
}

bool AuditSpool::loadSegments(std::string& err) {
  std::vector<uint64_t> seqs;
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    err = "cannot list " + dir_ + ": " + errnoText(errno);
    return false;
  }
  while (struct dirent* e = readdir(d)) {
    uint64_t seq;
    if (parseSegmentName(e->d_name, seq)) {
      seqs.push_back(seq);
    }
  }
  closedir(d);
  std::sort(seqs.begin(), seqs.end());
  unlinkat(dir_fd_.get(), kPositionTmpName, 0);

  // The replay position; without one, everything is replayed.
  uint64_t pos_seq = 0;
  uint64_t pos_off = 0;
  UniqueFd pfd(openat(dir_fd_.get(), kPositionName, O_RDONLY | O_CLOEXEC));
  if (pfd) {
    char buf[64];
    ssize_t n = read(pfd.get(), buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    if (sscanf(buf, "%" SCNu64 " %" SCNu64, &pos_seq, &pos_off) != 2) {
      LogLine(LogLevel::Warn, "audit spool position unreadable; replaying every segment")
          .str("dir", dir_);
      pos_seq = 0;
      pos_off = 0;
    }
  } else if (errno != ENOENT) {
    err = "cannot read " + dir_ + "/" + kPositionName + ": " + errnoText(errno);
    return false;
  }

  if (!seqs.empty() && pos_seq > seqs.back() + 1) {
    // Positions only ever name an existing segment or the next new one.
    LogLine(LogLevel::Warn, "audit spool position is past every segment; replaying all of them")
        .str("dir", dir_)
        .unum("position_segment", pos_seq);
    pos_seq = 0;
    pos_off = 0;
  }
  for (uint64_t seq : seqs) {
    const std::string name = segmentName(seq);
    if (seq < pos_seq) {
      // Replayed, but not yet removed when the last run stopped.
      if (unlinkat(dir_fd_.get(), name.c_str(), 0) != 0) {
        err = "cannot remove replayed " + dir_ + "/" + name + ": " + errnoText(errno);
        return false;
      }
      continue;
    }
    Segment seg{seq, 0, 0, false};
    uint64_t start_off = 0;
    if (!scanSegment(seg, seq == pos_seq ? pos_off : 0, seq == seqs.back(), start_off, err)) {
      return false;
    }
    if (seg.batches == 0 && !seg.damaged) {
      // Empty, or replayed to its end.
      unlinkat(dir_fd_.get(), name.c_str(), 0);
      continue;
    }
    if (segments_.empty()) {
      read_off_ = start_off;
    }
    segments_.push_back(seg);
    pending_batches_ += seg.batches;
    pending_events_ += seg.events;
    damaged_ += seg.damaged ? 1 : 0;
  }
  next_seq_ = std::max<uint64_t>({seqs.empty() ? 1 : seqs.back() + 1, pos_seq, 1});
  if (!segments_.empty()) {
    LogLine(LogLevel::Info, "audit spool opened")
        .str("dir", dir_)
        .unum("segments", segments_.size())
        .unum("batches", pending_batches_)
        .unum("events", pending_events_);
  }
  return true;
}

// Walks the records of one segment: counts those at or after `pos` (when
// `pos` is the start of a record; otherwise all of them, from 0, which
// `start_off` then says), and for the last segment cuts off a record left
// incomplete by a crash.
bool AuditSpool::scanSegment(Segment& seg, uint64_t pos, bool last, uint64_t& start_off,
                             std::string& err) {
  const std::string name = segmentName(seg.seq);
  const std::string path = dir_ + "/" + name;
  UniqueFd fd(openat(dir_fd_.get(), name.c_str(), (last ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  struct stat st;
  if (!fd || fstat(fd.get(), &st) != 0) {
    err = "cannot open " + path + ": " + errnoText(errno);
    return false;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t off = 0;
  bool at_boundary = pos == 0;
  uint64_t all_batches = 0;
  uint64_t all_events = 0;
  uint64_t pos_batches = 0;
  uint64_t pos_events = 0;
  bool have_last = false;
  uint64_t last_start = 0;
  RecordHeader last_hdr{};
  while (size - off >= kHeaderBytes) {
    at_boundary = at_boundary || off == pos;
    uint8_t buf[kHeaderBytes];
    if (!readAt(fd.get(), buf, sizeof(buf), off)) {
      err = "cannot read " + path + ": " + errnoText(errno);
      return false;
    }
    RecordHeader h = decodeHeader(buf);
    if (headerProblem(h, off, size) != nullptr) {
      break;
    }
    all_batches++;
    all_events += h.events;
    if (at_boundary) {
      pos_batches++;
      pos_events += h.events;
    }
    have_last = true;
    last_start = off;
    last_hdr = h;
    off += kHeaderBytes + h.length;
  }
  at_boundary = at_boundary || off == pos;
  uint64_t end = off;

  if (last) {
    // An append interrupted by a crash leaves at most one record behind:
    // cut off bytes that are no record, or a last record whose rows were
    // never written.
    if (end == size && have_last) {
      std::string rows(last_hdr.length, '\0');
      if (!readAt(fd.get(), rows.data(), rows.size(), last_start + kHeaderBytes)) {
        err = "cannot read " + path + ": " + errnoText(errno);
        return false;
      }
      if (crc32c(rows) != last_hdr.crc) {
        end = last_start;
        all_batches--;
        all_events -= last_hdr.events;
        if (at_boundary && pos <= last_start) {
          pos_batches--;
          pos_events -= last_hdr.events;
        }
      }
    }
    if (end < size) {
      if (ftruncate(fd.get(), static_cast<off_t>(end)) == 0 && fdatasync(fd.get()) == 0) {
        LogLine(LogLevel::Warn, "audit spool: incomplete record at the end removed")
            .str("segment", path)
            .unum("offset", end)
            .unum("bytes_dropped", size - end);
        size = end;
      } else {
        LogLine(LogLevel::Error, "audit spool: cannot cut off an incomplete record")
            .str("segment", path)
            .unum("offset", end)
            .str("error", errnoText(errno));
        seg.damaged = true;
      }
    }
  } else if (end < size) {
    LogLine(LogLevel::Warn, "audit spool segment holds damaged data; it is set aside on replay")
        .str("segment", path)
        .unum("offset", end)
        .unum("bytes", size - end);
    seg.damaged = true;
  }

  if (at_boundary && pos <= size) {
    start_off = pos;
    seg.batches = pos_batches;
    seg.events = pos_events;
  } else {
    LogLine(LogLevel::Warn, "audit spool position is not at a record; replaying the segment")
        .str("segment", path)
        .unum("position", pos);
    start_off = 0;
    seg.batches = all_batches;
    seg.events = all_events;
  }
  return true;
}

bool AuditSpool::empty() const { return pending_batches_ == 0 && damaged_ == 0; }

bool AuditSpool::openActive(std::string& err) {
  const uint64_t seq = next_seq_;
  const std::string name = segmentName(seq);
  UniqueFd fd(openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    err = "cannot create " + dir_ + "/" + name + ": " + errnoText(errno);
    return false;
  }
  // The new name must survive a crash as well as the data written to it.
  if (fsync(dir_fd_.get()) != 0) {
    err = "fsync " + dir_ + ": " + errnoText(errno);
    unlinkat(dir_fd_.get(), name.c_str(), 0);
    return false;
  }
  next_seq_ = seq + 1;
  if (segments_.empty()) {
    read_off_ = 0; // the position already names this segment
    read_size_ = 0;
  }
  segments_.push_back(Segment{seq, 0, 0, false});
  active_fd_ = std::move(fd);
  active_seq_ = seq;
  active_size_ = 0;
  return true;
}

void AuditSpool::closeActive() {
  active_fd_.reset();
  active_seq_ = 0;
  active_size_ = 0;
}

bool AuditSpool::append(std::string_view rows, uint32_t events, std::string& err) {
  if (!open_) {
    err = "audit spool is not open";
    return false;
  }
  if (rows.size() > kMaxRecordBytes) {
    err = "batch of " + std::to_string(rows.size()) + " bytes is too large for the spool";
    return false;
  }
  const uint64_t record = kHeaderBytes + rows.size();
  if (active_fd_ && active_size_ > 0 && active_size_ + record > segment_bytes_) {
    closeActive();
  }
  if (!active_fd_ && !openActive(err)) {
    return false;
  }
  uint8_t hdr[kHeaderBytes];
  sark_put_u32(hdr, kRecordMagic);
  sark_put_u32(hdr + 4, static_cast<uint32_t>(rows.size()));
  sark_put_u32(hdr + 8, events);
  sark_put_u32(hdr + 12, crc32c(rows));
  const int fd = active_fd_.get();
  const char* failed = nullptr;
  if (!writeAt(fd, hdr, sizeof(hdr), rows, active_size_)) {
    failed = "write";
  } else if (fdatasync(fd) != 0) {
    failed = "fdatasync";
  }
  if (failed != nullptr) {
    const int e = errno;
    const std::string path = dir_ + "/" + segmentName(active_seq_);
    err = std::string(failed) + " " + path + ": " + errnoText(e);
    if (ftruncate(fd, static_cast<off_t>(active_size_)) != 0) {
      // The partial record stays; replay will find it and set it aside.
      LogLine(LogLevel::Error, "audit spool: cannot remove a partly written record")
          .str("segment", path)
          .unum("offset", active_size_)
          .str("error", errnoText(errno));
      Segment& seg = segments_.back();
      if (!seg.damaged) {
        seg.damaged = true;
        damaged_++;
      }
      closeActive();
    }
    return false;
  }
  active_size_ += record;
  Segment& seg = segments_.back();
  seg.batches++;
  seg.events += events;
  pending_batches_++;
  pending_events_ += events;
  return true;
}

bool AuditSpool::peek(std::string& rows, uint32_t& events, std::string& err) {
  err.clear();
  peeked_ = false;
  if (!open_) {
    err = "audit spool is not open";
    return false;
  }
  while (!segments_.empty()) {
    const Segment& seg = segments_.front();
    const std::string name = segmentName(seg.seq);
    if (active_fd_ && seg.seq == active_seq_) {
      closeActive(); // appends go on in a new segment
    }
    if (!read_fd_) {
      UniqueFd fd(openat(dir_fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
      struct stat st;
      if (!fd) {
        if (errno == ENOENT) {
          LogLine(LogLevel::Error, "audit spool segment vanished")
              .str("segment", dir_ + "/" + name)
              .unum("events", seg.events);
          finishSegment();
          continue;
        }
        err = "cannot open " + dir_ + "/" + name + ": " + errnoText(errno);
        return false;
      }
      if (fstat(fd.get(), &st) != 0) {
        err = "cannot stat " + dir_ + "/" + name + ": " + errnoText(errno);
        return false;
      }
      read_fd_ = std::move(fd);
      read_size_ = static_cast<uint64_t>(st.st_size);
    }
    if (read_off_ >= read_size_) {
      finishSegment();
      continue;
    }
    if (read_size_ - read_off_ < kHeaderBytes) {
      if (!rejectRest("incomplete record header", err)) {
        return false;
      }
      continue;
    }
    uint8_t buf[kHeaderBytes];
    if (!readAt(read_fd_.get(), buf, sizeof(buf), read_off_)) {
      err = "cannot read " + dir_ + "/" + name + ": " + errnoText(errno);
      return false;
    }
    const RecordHeader h = decodeHeader(buf);
    if (const char* why = headerProblem(h, read_off_, read_size_)) {
      if (!rejectRest(why, err)) {
        return false;
      }
      continue;
    }
    rows.resize(h.length);
    if (!readAt(read_fd_.get(), rows.data(), rows.size(), read_off_ + kHeaderBytes)) {
      err = "cannot read " + dir_ + "/" + name + ": " + errnoText(errno);
      return false;
    }
    if (crc32c(rows) != h.crc) {
      if (!rejectRest("CRC mismatch", err)) {
        return false;
      }
      continue;
    }
    events = h.events;
    peeked_ = true;
    peeked_bytes_ = kHeaderBytes + h.length;
    peeked_events_ = h.events;
    return true;
  }
  rows.clear();
  events = 0;
  return false;
}

// Moves the front segment from the read position on to
// rejected-<seq>.log, then drops the segment.
bool AuditSpool::rejectRest(const char* why, std::string& err) {
  const Segment& seg = segments_.front();
  char name[48];
  snprintf(name, sizeof(name), "rejected-%020" PRIu64 ".log", seg.seq);
  const std::string seg_path = dir_ + "/" + segmentName(seg.seq);
  const std::string path = dir_ + "/" + name;
  LogLine(LogLevel::Error, "audit spool record damaged; moving the rest of its segment aside")
      .str("segment", seg_path)
      .unum("offset", read_off_)
      .unum("bytes", read_size_ - read_off_)
      .unum("batches", seg.batches)
      .unum("events", seg.events)
      .str("reason", why)
      .str("moved_to", path);
  UniqueFd out(openat(dir_fd_.get(), name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  struct stat st;
  if (!out || fstat(out.get(), &st) != 0) {
    err = "cannot create " + path + ": " + errnoText(errno);
    return false;
  }
  // Added after whatever an earlier rejection of this segment left there.
  const uint64_t out_end = static_cast<uint64_t>(st.st_size);
  std::string buf(std::min<uint64_t>(read_size_ - read_off_, 1 << 20), '\0');
  for (uint64_t off = read_off_; off < read_size_;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), read_size_ - off));
    if (!readAt(read_fd_.get(), buf.data(), n, off)) {
      err = "cannot read " + seg_path + ": " + errnoText(errno);
      return false;
    }
    if (!writeAt(out.get(), nullptr, 0, std::string_view(buf.data(), n),
                 out_end + (off - read_off_))) {
      err = "cannot write " + path + ": " + errnoText(errno);
      return false;
    }
    off += n;
  }
  if (fdatasync(out.get()) != 0 || fsync(dir_fd_.get()) != 0) {
    err = "cannot sync " + path + ": " + errnoText(errno);
    return false;
  }
  finishSegment();
  return true;
}

bool AuditSpool::setAside(std::string_view rows, std::string& path, std::string& err,
                          const char* kind) {
  if (!open_) {
    err = "audit spool is not open";
    return false;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char name[96];
  snprintf(name, sizeof(name), "%.32s-%" PRIu64 "-%" PRIu64 ".copy", kind,
           static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000,
           ++set_aside_);
  path = dir_ + "/" + name;
  UniqueFd out(openat(dir_fd_.get(), name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out || !writeAt(out.get(), nullptr, 0, rows, 0) || fdatasync(out.get()) != 0 ||
      fsync(dir_fd_.get()) != 0) {
    err = "cannot write " + path + ": " + errnoText(errno);
    return false;
  }
  return true;
}

void AuditSpool::consume() {
  if (!peeked_ || segments_.empty()) {
    return;
  }
  peeked_ = false;
  Segment& seg = segments_.front();
  read_off_ += peeked_bytes_;
  const uint64_t events = std::min<uint64_t>(peeked_events_, seg.events);
  seg.batches -= seg.batches > 0 ? 1 : 0;
  seg.events -= events;
  pending_batches_ -= pending_batches_ > 0 ? 1 : 0;
  pending_events_ -= std::min(pending_events_, events);
  if (read_off_ >= read_size_) {
    finishSegment();
  } else {
    persistPosition();
  }
}

// The front segment is read to its end (or set aside): delete it and move
// the position to the next one.
void AuditSpool::finishSegment() {
  const Segment seg = segments_.front();
  segments_.pop_front();
  read_fd_.reset();
  read_off_ = 0;
  read_size_ = 0;
  peeked_ = false;
  dropCounts(seg);
  const std::string name = segmentName(seg.seq);
  if (unlinkat(dir_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    LogLine(LogLevel::Warn, "audit spool: cannot remove a replayed segment")
        .str("segment", dir_ + "/" + name)
        .str("error", errnoText(errno));
  }
  persistPosition();
}

void AuditSpool::dropCounts(const Segment& seg) {
  pending_batches_ -= std::min(pending_batches_, seg.batches);
  pending_events_ -= std::min(pending_events_, seg.events);
  if (seg.damaged && damaged_ > 0) {
    damaged_--;
  }
}

// Written via rename so it is always whole; not synced (a batch replayed
// twice is harmless).
void AuditSpool::persistPosition() {
  const uint64_t seq = segments_.empty() ? next_seq_ : segments_.front().seq;
  char buf[64];
  const int n = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 "\n", seq, read_off_);
  UniqueFd fd(openat(dir_fd_.get(), kPositionTmpName, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                     0600));
  bool ok = fd && writeAt(fd.get(), nullptr, 0, std::string_view(buf, static_cast<size_t>(n)), 0);
  fd.reset();
  ok = ok && renameat(dir_fd_.get(), kPositionTmpName, dir_fd_.get(), kPositionName) == 0;
  if (!ok) {
    LogLine(LogLevel::Warn, "audit spool: cannot save the replay position")
        .str("dir", dir_)
        .str("error", errnoText(errno));
  }
}

void AuditSpool::close() {
  closeActive();
  read_fd_.reset();
  segments_.clear();
  next_seq_ = 1;
  damaged_ = 0;
  read_off_ = 0;
  read_size_ = 0;
  peeked_ = false;
  pending_batches_ = 0;
  pending_events_ = 0;
  lock_fd_.reset();
  dir_fd_.reset();
  open_ = false;
}

} // namespace sark
