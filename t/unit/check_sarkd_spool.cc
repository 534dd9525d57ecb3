// Unit tests for sarkd's audit spool (daemon/audit/audit_spool.cc): order of
// replay across segments, the persisted position, crash recovery of a torn
// last record, damaged records set aside, and the directory lock.

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "audit/audit_spool.h"
#include "core/log.h"

// Last: check.h defines a fail() macro that breaks <ios> (pulled in by
// the headers above).
#include <check.h>

using sark::AuditSpool;

#define ASSERT_STR(actual, expected)                                                        \
  do {                                                                                      \
    const std::string a_ = (actual);                                                        \
    const std::string e_ = (expected);                                                      \
    ck_assert_msg(a_ == e_, "got \"%.200s\", want \"%.200s\"", a_.c_str(), e_.c_str());     \
  } while (0)

namespace {

constexpr size_t kHeader = 16;
constexpr uint64_t kSmallSegment = 1024;

std::string g_tmp;   // mkdtemp directory, removed after each test
std::string g_spool; // spool directory inside it (created by open)

int removeEntry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }

void setup() {
  sark::setLogLevel(sark::LogLevel::Error);
  char tmpl[] = "/tmp/check-sarkd-spool-XXXXXX";
  ck_assert(mkdtemp(tmpl) != nullptr);
  g_tmp = tmpl;
  g_spool = g_tmp + "/audit/spool";
}

void teardown() {
  nftw(g_tmp.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS);
}

// Rows of batch `i`: 200 bytes that name the batch.
std::string rowsOf(int i) {
  std::string s = "batch " + std::to_string(i) + "\trow\n";
  s.resize(199, 'x');
  s.push_back('\n');
  return s;
}

uint32_t eventsOf(int i) { return static_cast<uint32_t>(i + 1); }

void appendRange(AuditSpool& sp, int from, int to) {
  for (int i = from; i < to; i++) {
    std::string err;
    ck_assert_msg(sp.append(rowsOf(i), eventsOf(i), err), "append %d: %s", i, err.c_str());
  }
}

// Peeks and consumes the next batch, which must be batch `i`.
void expectNext(AuditSpool& sp, int i) {
  std::string rows;
  uint32_t events = 0;
  std::string err;
  ck_assert_msg(sp.peek(rows, events, err), "peek for %d: %s", i, err.c_str());
  ASSERT_STR(rows, rowsOf(i));
  ck_assert_uint_eq(events, eventsOf(i));
  sp.consume();
}

void expectEmpty(AuditSpool& sp) {
  ck_assert(sp.empty());
  ck_assert_uint_eq(sp.pendingBatches(), 0);
  ck_assert_uint_eq(sp.pendingEvents(), 0);
  std::string rows = "stale";
  uint32_t events = 9;
  std::string err;
  ck_assert(!sp.peek(rows, events, err));
  ck_assert_msg(err.empty(), "%s", err.c_str());
}

uint64_t eventsIn(int from, int to) {
  uint64_t n = 0;
  for (int i = from; i < to; i++) {
    n += eventsOf(i);
  }
  return n;
}

// Sorted names in the spool directory starting with `prefix`.
std::vector<std::string> filesWith(const std::string& prefix) {
  std::vector<std::string> names;
  DIR* d = opendir(g_spool.c_str());
  if (d == nullptr) {
    return names;
  }
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) == 0) {
      names.push_back(name);
    }
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string pathOf(const std::string& name) { return g_spool + "/" + name; }

std::string readFile(const std::string& path) {
  std::string data;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ck_assert_msg(fd >= 0, "open %s", path.c_str());
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  ck_assert(n == 0);
  return data;
}

void writeFile(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_msg(fd >= 0, "open %s", path.c_str());
  ck_assert(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
}

off_t sizeOf(const std::string& path) {
  struct stat st;
  ck_assert_int_eq(stat(path.c_str(), &st), 0);
  return st.st_size;
}

void openOk(AuditSpool& sp) {
  std::string err;
  ck_assert_msg(sp.open(err), "open: %s", err.c_str());
}

constexpr size_t kRecord = kHeader + 200; // one batch of rowsOf()

} // namespace

START_TEST(test_crc32c) {
  ck_assert_uint_eq(sark::crc32c("123456789"), 0xe3069283u);
  ck_assert_uint_eq(sark::crc32c(""), 0);
  ck_assert_uint_eq(sark::crc32c("6789", sark::crc32c("12345")), 0xe3069283u);
  ck_assert_uint_eq(sark::crc32c(std::string(32, '\0')), 0x8a9136aau);
}
END_TEST

START_TEST(test_open_creates_directory) {
  AuditSpool sp(g_spool);
  openOk(sp);
  struct stat st;
  ck_assert_int_eq(stat(g_spool.c_str(), &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_uint_eq(st.st_mode & 0777, 0700);
  ck_assert_int_eq(access(pathOf("LOCK").c_str(), F_OK), 0);
  expectEmpty(sp);
  ck_assert_uint_eq(filesWith("spool-").size(), 0);
}
END_TEST

START_TEST(test_open_refuses_a_file) {
  ck_assert_int_eq(mkdir((g_tmp + "/audit").c_str(), 0700), 0);
  writeFile(g_spool, "not a directory");
  AuditSpool sp(g_spool);
  std::string err;
  ck_assert(!sp.open(err));
  ck_assert_msg(err.find(g_spool) != std::string::npos, "%s", err.c_str());
}
END_TEST

START_TEST(test_not_open) {
  AuditSpool sp(g_spool);
  std::string err;
  ck_assert(!sp.append("x", 1, err));
  ck_assert(!err.empty());
  std::string rows;
  uint32_t events;
  err.clear();
  ck_assert(!sp.peek(rows, events, err));
  ck_assert(!err.empty());
  sp.consume(); // harmless
}
END_TEST

START_TEST(test_append_peek_consume_in_order) {
  AuditSpool sp(g_spool);
  openOk(sp);
  appendRange(sp, 0, 10);
  ck_assert(!sp.empty());
  ck_assert_uint_eq(sp.pendingBatches(), 10);
  ck_assert_uint_eq(sp.pendingEvents(), eventsIn(0, 10));
  // peek does not remove; consume without a peek does nothing
  std::string rows;
  uint32_t events = 0;
  std::string err;
  ck_assert(sp.peek(rows, events, err));
  ASSERT_STR(rows, rowsOf(0));
  ck_assert(sp.peek(rows, events, err));
  ASSERT_STR(rows, rowsOf(0));
  for (int i = 0; i < 10; i++) {
    expectNext(sp, i);
    ck_assert_uint_eq(sp.pendingBatches(), static_cast<uint64_t>(9 - i));
    ck_assert_uint_eq(sp.pendingEvents(), eventsIn(i + 1, 10));
    sp.consume(); // second consume of one peek: no effect
    ck_assert_uint_eq(sp.pendingBatches(), static_cast<uint64_t>(9 - i));
  }
  expectEmpty(sp);
  ck_assert_uint_eq(filesWith("spool-").size(), 0);
}
END_TEST

// A batch the database refuses is kept whole in its own file, and the
// queue is not touched.
START_TEST(test_set_aside_keeps_the_rows) {
  AuditSpool sp(g_spool);
  openOk(sp);
  appendRange(sp, 0, 2);
  std::string path;
  std::string err;
  ck_assert_msg(sp.setAside(rowsOf(7), path, err), "%s", err.c_str());
  ck_assert_msg(path.rfind(g_spool + "/refused-", 0) == 0, "%s", path.c_str());
  ASSERT_STR(readFile(path), rowsOf(7));
  std::string second;
  ck_assert(sp.setAside(rowsOf(8), second, err));
  ck_assert(second != path);
  // Invalid events go to files of their own kind.
  std::string invalid;
  ck_assert(sp.setAside(rowsOf(9), invalid, err, "invalid"));
  ck_assert_msg(invalid.rfind(g_spool + "/invalid-", 0) == 0, "%s", invalid.c_str());
  ck_assert_msg(invalid.size() > 5 && invalid.compare(invalid.size() - 5, 5, ".copy") == 0, "%s",
                invalid.c_str());
  ASSERT_STR(readFile(invalid), rowsOf(9));
  ck_assert_uint_eq(sp.pendingBatches(), 2);
  expectNext(sp, 0);
}
END_TEST

START_TEST(test_empty_batch_record) {
  AuditSpool sp(g_spool);
  openOk(sp);
  std::string err;
  ck_assert(sp.append("", 0, err));
  ck_assert(!sp.empty());
  std::string rows = "x";
  uint32_t events = 5;
  ck_assert(sp.peek(rows, events, err));
  ck_assert(rows.empty());
  ck_assert_uint_eq(events, 0);
  sp.consume();
  expectEmpty(sp);
}
END_TEST

START_TEST(test_rotation_and_cleanup) {
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  appendRange(sp, 0, 30);
  // Four records fit in 1024 bytes: 30 batches take 8 segments.
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 8);
  ck_assert_uint_eq(segs[0].size(), std::string("spool-00000000000000000001.log").size());
  ck_assert_int_eq(sizeOf(pathOf(segs[0])), static_cast<off_t>(4 * kRecord));
  ck_assert_int_eq(sizeOf(pathOf(segs[7])), static_cast<off_t>(2 * kRecord));
  for (int i = 0; i < 30; i++) {
    expectNext(sp, i);
    // A segment is removed as soon as its last batch is consumed.
    const size_t left = i == 29 ? 0 : 8 - static_cast<size_t>((i + 1) / 4);
    ck_assert_msg(filesWith("spool-").size() == left, "after %d: %zu segments", i,
                  filesWith("spool-").size());
  }
  expectEmpty(sp);
  ck_assert_int_eq(access(pathOf("POSITION").c_str(), F_OK), 0);
}
END_TEST

START_TEST(test_peek_rotates_the_active_segment) {
  AuditSpool sp(g_spool);
  openOk(sp);
  appendRange(sp, 0, 2);
  ck_assert_uint_eq(filesWith("spool-").size(), 1);
  std::string rows;
  uint32_t events;
  std::string err;
  ck_assert(sp.peek(rows, events, err));
  // The reader reached the segment being appended to: appends move on.
  appendRange(sp, 2, 3);
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 2);
  ck_assert_int_eq(sizeOf(pathOf(segs[0])), static_cast<off_t>(2 * kRecord));
  ck_assert_uint_eq(sp.pendingBatches(), 3);
  sp.consume();
  expectNext(sp, 1);
  ck_assert_uint_eq(filesWith("spool-").size(), 1);
  expectNext(sp, 2);
  ck_assert_uint_eq(filesWith("spool-").size(), 0);
  appendRange(sp, 3, 4);
  expectNext(sp, 3);
  expectEmpty(sp);
}
END_TEST

START_TEST(test_reopen_resumes_at_position) {
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    appendRange(sp, 0, 12);
    for (int i = 0; i < 5; i++) { // past the first segment (4 records)
      expectNext(sp, i);
    }
    std::string rows;
    uint32_t events;
    std::string err;
    ck_assert(sp.peek(rows, events, err)); // peeked, never consumed
    sp.close();
    ck_assert(!sp.isOpen());
  }
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert_uint_eq(sp.pendingBatches(), 7);
  ck_assert_uint_eq(sp.pendingEvents(), eventsIn(5, 12));
  appendRange(sp, 12, 14);
  for (int i = 5; i < 14; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
  sp.close();
  // Everything replayed: a new run starts empty and new segments come
  // after the old ones.
  AuditSpool again(g_spool, kSmallSegment);
  openOk(again);
  expectEmpty(again);
  appendRange(again, 20, 21);
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 1);
  ck_assert_msg(segs[0] > "spool-00000000000000000004.log", "%s", segs[0].c_str());
  again.close();
  AuditSpool last(g_spool, kSmallSegment);
  openOk(last);
  ck_assert_uint_eq(last.pendingBatches(), 1);
  expectNext(last, 20);
  expectEmpty(last);
}
END_TEST

START_TEST(test_reopen_appends_to_new_segment) {
  {
    AuditSpool sp(g_spool);
    openOk(sp);
    appendRange(sp, 0, 2);
  }
  AuditSpool sp(g_spool);
  openOk(sp);
  appendRange(sp, 2, 3);
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 2);
  ck_assert_uint_eq(sp.pendingBatches(), 3);
  for (int i = 0; i < 3; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

START_TEST(test_replayed_segments_removed_on_open) {
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    appendRange(sp, 0, 8);
  }
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 2);
  // As if the run stopped between saving the position and removing the
  // first segment.
  writeFile(pathOf("POSITION"), "2 0\n");
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert_uint_eq(filesWith("spool-").size(), 1);
  ck_assert_uint_eq(sp.pendingBatches(), 4);
  for (int i = 4; i < 8; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

START_TEST(test_bad_position_replays_segment) {
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    appendRange(sp, 0, 6);
  }
  writeFile(pathOf("POSITION"), "1 5\n"); // not the start of a record
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    ck_assert_uint_eq(sp.pendingBatches(), 6);
    expectNext(sp, 0);
  }
  writeFile(pathOf("POSITION"), "garbage");
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    ck_assert_uint_eq(sp.pendingBatches(), 6);
  }
  writeFile(pathOf("POSITION"), "999 0\n"); // past every segment
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert_uint_eq(sp.pendingBatches(), 6);
  ck_assert_uint_eq(filesWith("spool-").size(), 2);
  for (int i = 0; i < 6; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

// Appends `tail` to the only segment after three batches, reopens, and
// checks that the tail is gone and the three batches are intact.
void checkTornTail(const std::string& tail) {
  {
    AuditSpool sp(g_spool);
    openOk(sp);
    appendRange(sp, 0, 3);
  }
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 1);
  const std::string seg = pathOf(segs[0]);
  writeFile(seg, readFile(seg) + tail);
  AuditSpool sp(g_spool);
  openOk(sp);
  ck_assert_int_eq(sizeOf(seg), static_cast<off_t>(3 * kRecord));
  ck_assert_uint_eq(sp.pendingBatches(), 3);
  ck_assert_uint_eq(sp.pendingEvents(), eventsIn(0, 3));
  for (int i = 0; i < 3; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
  ck_assert_uint_eq(filesWith("rejected-").size(), 0);
}

START_TEST(test_torn_tail_partial_header) { checkTornTail(std::string("SKA", 3)); }
END_TEST

START_TEST(test_torn_tail_partial_rows) {
  // A whole header promising 1000 bytes, 100 of which arrived.
  std::string tail = "SKAU";
  tail += std::string("\0\0\x03\xe8\0\0\0\x01\0\0\0\0", 12);
  tail += std::string(100, 'r');
  checkTornTail(tail);
}
END_TEST

START_TEST(test_torn_tail_garbage) { checkTornTail(std::string(40, '\0')); }
END_TEST

START_TEST(test_torn_tail_unwritten_rows) {
  // The file grew but the last record's rows never reached the disk.
  {
    AuditSpool sp(g_spool);
    openOk(sp);
    appendRange(sp, 0, 3);
  }
  const std::string seg = pathOf(filesWith("spool-")[0]);
  std::string data = readFile(seg);
  std::fill(data.begin() + 2 * kRecord + kHeader, data.end(), '\0');
  writeFile(seg, data);
  AuditSpool sp(g_spool);
  openOk(sp);
  ck_assert_int_eq(sizeOf(seg), static_cast<off_t>(2 * kRecord));
  ck_assert_uint_eq(sp.pendingBatches(), 2);
  ck_assert_uint_eq(sp.pendingEvents(), eventsIn(0, 2));
  expectNext(sp, 0);
  expectNext(sp, 1);
  expectEmpty(sp);
}
END_TEST

// Two closed segments of four batches each (0-3, 4-7); `damage` edits the
// first one's bytes.  Returns the first segment's original bytes.
template <typename Damage>
std::string twoSegmentsDamaged(Damage damage) {
  {
    AuditSpool sp(g_spool, kSmallSegment);
    openOk(sp);
    appendRange(sp, 0, 8);
  }
  std::vector<std::string> segs = filesWith("spool-");
  ck_assert_uint_eq(segs.size(), 2);
  const std::string seg = pathOf(segs[0]);
  const std::string original = readFile(seg);
  std::string data = original;
  damage(data);
  writeFile(seg, data);
  return original;
}

START_TEST(test_crc_mismatch_moves_rest_aside) {
  // One bit of batch 1's rows flipped.
  const std::string original =
      twoSegmentsDamaged([](std::string& d) { d[kRecord + kHeader + 7] ^= 0x10; });
  const std::string first_seg = filesWith("spool-")[0];
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert_uint_eq(sp.pendingBatches(), 8); // headers are fine
  expectNext(sp, 0);
  // Batch 1 is damaged: 1-3 go aside, replay goes on with the next segment.
  expectNext(sp, 4);
  std::vector<std::string> rejected = filesWith("rejected-");
  ck_assert_uint_eq(rejected.size(), 1);
  ASSERT_STR(rejected[0], "rejected-" + first_seg.substr(6));
  std::string kept = readFile(pathOf(rejected[0]));
  ck_assert_uint_eq(kept.size(), 3 * kRecord);
  std::string want = original.substr(kRecord);
  want[kHeader + 7] ^= 0x10;
  ck_assert(kept == want);
  ck_assert_int_eq(access(pathOf(first_seg).c_str(), F_OK), -1);
  ck_assert_uint_eq(sp.pendingBatches(), 3);
  ck_assert_uint_eq(sp.pendingEvents(), eventsIn(5, 8));
  for (int i = 5; i < 8; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

START_TEST(test_bad_header_moves_rest_aside) {
  // Batch 2's magic overwritten: the segment cannot be walked past it.
  const std::string original = twoSegmentsDamaged([](std::string& d) { d[2 * kRecord] = 'X'; });
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert(!sp.empty());
  ck_assert_uint_eq(sp.pendingBatches(), 6);
  expectNext(sp, 0);
  expectNext(sp, 1);
  expectNext(sp, 4);
  std::vector<std::string> rejected = filesWith("rejected-");
  ck_assert_uint_eq(rejected.size(), 1);
  ck_assert_uint_eq(readFile(pathOf(rejected[0])).size(), 2 * kRecord);
  for (int i = 5; i < 8; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

START_TEST(test_damage_only_is_not_empty) {
  // A closed segment holding nothing but damage still needs a replay pass
  // to be set aside.
  twoSegmentsDamaged([](std::string& d) { d[0] = 'X'; });
  AuditSpool sp(g_spool, kSmallSegment);
  openOk(sp);
  ck_assert_uint_eq(sp.pendingBatches(), 4);
  for (int i = 4; i < 8; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
  ck_assert_uint_eq(readFile(pathOf(filesWith("rejected-")[0])).size(), 4 * kRecord);
}
END_TEST

START_TEST(test_lock_excludes_second_open) {
  AuditSpool first(g_spool);
  openOk(first);
  AuditSpool second(g_spool);
  std::string err;
  ck_assert(!second.open(err));
  ck_assert_msg(err.find("in use") != std::string::npos, "%s", err.c_str());
  ck_assert_msg(err.find("LOCK") != std::string::npos, "%s", err.c_str());
  ck_assert(!second.isOpen());
  appendRange(first, 0, 1);
  first.close();
  err.clear();
  ck_assert_msg(second.open(err), "%s", err.c_str());
  expectNext(second, 0);
}
END_TEST

START_TEST(test_failed_append_leaves_nothing) {
  AuditSpool sp(g_spool);
  openOk(sp);
  appendRange(sp, 0, 2);
  const std::string seg = pathOf(filesWith("spool-")[0]);
  const off_t before = sizeOf(seg);
  // A file size limit makes the next write stop part way (EFBIG).
  struct rlimit old;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(before + 100);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string err;
  const bool ok = sp.append(std::string(1000, 'b'), 1, err);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);
  ck_assert(!ok);
  ck_assert_msg(err.find("File too large") != std::string::npos, "%s", err.c_str());
  ck_assert_msg(err.find(seg) != std::string::npos, "%s", err.c_str());
  ck_assert_int_eq(sizeOf(seg), before);
  ck_assert_uint_eq(sp.pendingBatches(), 2);
  appendRange(sp, 2, 3);
  for (int i = 0; i < 3; i++) {
    expectNext(sp, i);
  }
  expectEmpty(sp);
}
END_TEST

static Suite* spoolSuite() {
  Suite* s = suite_create("sarkd_spool");
  TCase* basic = tcase_create("Basic");
  tcase_add_checked_fixture(basic, setup, teardown);
  tcase_add_test(basic, test_crc32c);
  tcase_add_test(basic, test_open_creates_directory);
  tcase_add_test(basic, test_open_refuses_a_file);
  tcase_add_test(basic, test_not_open);
  tcase_add_test(basic, test_append_peek_consume_in_order);
  tcase_add_test(basic, test_empty_batch_record);
  tcase_add_test(basic, test_set_aside_keeps_the_rows);
  tcase_add_test(basic, test_rotation_and_cleanup);
  tcase_add_test(basic, test_peek_rotates_the_active_segment);
  tcase_add_test(basic, test_lock_excludes_second_open);
  tcase_add_test(basic, test_failed_append_leaves_nothing);
  suite_add_tcase(s, basic);

  TCase* reopen = tcase_create("Reopen");
  tcase_add_checked_fixture(reopen, setup, teardown);
  tcase_add_test(reopen, test_reopen_resumes_at_position);
  tcase_add_test(reopen, test_reopen_appends_to_new_segment);
  tcase_add_test(reopen, test_replayed_segments_removed_on_open);
  tcase_add_test(reopen, test_bad_position_replays_segment);
  suite_add_tcase(s, reopen);

  TCase* damage = tcase_create("Damage");
  tcase_add_checked_fixture(damage, setup, teardown);
  tcase_add_test(damage, test_torn_tail_partial_header);
  tcase_add_test(damage, test_torn_tail_partial_rows);
  tcase_add_test(damage, test_torn_tail_garbage);
  tcase_add_test(damage, test_torn_tail_unwritten_rows);
  tcase_add_test(damage, test_crc_mismatch_moves_rest_aside);
  tcase_add_test(damage, test_bad_header_moves_rest_aside);
  tcase_add_test(damage, test_damage_only_is_not_empty);
  suite_add_tcase(s, damage);
  return s;
}

int main() {
  SRunner* sr = srunner_create(spoolSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
