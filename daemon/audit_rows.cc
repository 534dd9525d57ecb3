#include "audit_rows.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

#include "json_util.h"
#include "sark_proto.h"

namespace sark {

const char* const kAuditCopyColumns =
    "id, event_type, user_id, agent_id, server_name, tool_name, action, sensitivity_level, "
    "decision, reason, cache_layer, latency_us, policy_revision, gateway_request_id, client_ip, "
    "metadata, \"timestamp\"";

namespace {

// 10000-01-01 00:00:00 UTC in Unix microseconds: the first moment a
// four-digit year cannot show.
constexpr uint64_t kTimestampLimitUs = 253402300800ull * 1000000;

constexpr char kReplacement[] = "\xef\xbf\xbd"; // U+FFFD
constexpr char kHexDigits[] = "0123456789abcdef";

// Byte classes of the text escaper: copied as is, escaped, or the start
// of a multi-byte sequence that must be checked.
enum : uint8_t { kPlain = 0, kEscape = 1, kMultiByte = 2 };

constexpr std::array<uint8_t, 256> makeByteClasses() {
  std::array<uint8_t, 256> t{};
  for (size_t c = 0x80; c < 256; c++) {
    t[c] = kMultiByte;
  }
  t[0] = kEscape;
  t['\t'] = kEscape;
  t['\n'] = kEscape;
  t['\r'] = kEscape;
  t['\\'] = kEscape;
  return t;
}
constexpr std::array<uint8_t, 256> kByteClass = makeByteClasses();

// Length of the well-formed UTF-8 sequence starting p[0] (a byte >= 0x80),
// or 0 when it is not one.
size_t utf8SequenceLength(const uint8_t* p, size_t n) {
  const uint8_t b0 = p[0];
  size_t tail;
  uint32_t cp;
  uint32_t min;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    tail = 1;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    tail = 2;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    tail = 3;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (n <= tail) {
    return 0;
  }
  for (size_t k = 1; k <= tail; k++) {
    if ((p[k] & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (p[k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return tail + 1;
}

// Writes p[0..n) at o as one COPY text field: valid UTF-8 with NUL and
// invalid bytes replaced by U+FFFD, and \ TAB LF CR escaped.  At most
// kTextGrowth * n bytes; returns the end.
constexpr size_t kTextGrowth = 3;

char* putText(char* o, const uint8_t* p, size_t n) {
  size_t run = 0; // start of the bytes not yet written
  size_t i = 0;
  while (i < n) {
    // Eight plain bytes at a time: none below 0x20, none from 0x80, no
    // backslash (a false alarm only sends them byte by byte).
    if (n - i >= 8) {
      constexpr uint64_t kOnes = 0x0101010101010101ULL;
      constexpr uint64_t kHigh = 0x8080808080808080ULL;
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      const uint64_t b = w ^ (kOnes * '\\');
      if (((((w - kOnes * 0x20) & ~w) | ((b - kOnes) & ~b) | w) & kHigh) == 0) {
        i += 8;
        continue;
      }
    }
    const uint8_t cls = kByteClass[p[i]];
    if (cls == kPlain) {
      i++;
      continue;
    }
    if (cls == kMultiByte) {
      size_t len = utf8SequenceLength(p + i, n - i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    std::memcpy(o, p + run, i - run);
    o += i - run;
    switch (p[i]) {
    case '\\':
      *o++ = '\\';
      *o++ = '\\';
      break;
    case '\t':
      *o++ = '\\';
      *o++ = 't';
      break;
    case '\n':
      *o++ = '\\';
      *o++ = 'n';
      break;
    case '\r':
      *o++ = '\\';
      *o++ = 'r';
      break;
    default: // NUL or a byte of no valid sequence
      std::memcpy(o, kReplacement, 3);
      o += 3;
    }
    i++;
    run = i;
  }
  std::memcpy(o, p + run, n - run);
  return o + (n - run);
}

// Bytes of p[0..n) that hold at most `max_chars` characters as putText
// counts them (a well-formed sequence, or a byte it replaces).
size_t prefixOfChars(const uint8_t* p, size_t n, size_t max_chars) {
  size_t i = 0;
  for (size_t chars = 0; chars < max_chars && i < n; chars++) {
    size_t len = p[i] < 0x80 ? 1 : utf8SequenceLength(p + i, n - i);
    i += len != 0 ? len : 1;
  }
  return i;
}

char* putUuid(char* o, const uint8_t* p) {
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      *o++ = '-';
    }
    *o++ = kHexDigits[p[i] >> 4];
    *o++ = kHexDigits[p[i] & 0x0f];
  }
  return o;
}

// Proleptic Gregorian date of `days` days after 1970-01-01.
void dateFromDays(uint64_t days, unsigned& year, unsigned& month, unsigned& day) {
  // Count from 0000-03-01 so that the leap day ends each year.
  constexpr uint64_t kDaysTo1970 = 719468; // 0000-03-01 .. 1970-01-01
  constexpr uint64_t kDays400y = 146097;
  constexpr uint64_t kDays100y = 36524;
  constexpr uint64_t kDays4y = 1461;
  uint64_t n = days + kDaysTo1970;
  uint64_t y = (n / kDays400y) * 400;
  n %= kDays400y;
  uint64_t centuries = n / kDays100y;
  if (centuries == 4) { // the last day of a 400-year cycle
    centuries = 3;
  }
  y += centuries * 100;
  n -= centuries * kDays100y;
  y += (n / kDays4y) * 4;
  n %= kDays4y;
  uint64_t years = n / 365;
  if (years == 4) { // the leap day at the end of a 4-year run
    years = 3;
  }
  y += years;
  n -= years * 365; // day of the year, 0 = March 1
  // Months from March have 31,30,31,30,31 days, repeating every five.
  const uint64_t m = (5 * n + 2) / 153;
  day = static_cast<unsigned>(n - (153 * m + 2) / 5 + 1);
  month = static_cast<unsigned>(m < 10 ? m + 3 : m - 9);
  year = static_cast<unsigned>(month <= 2 ? y + 1 : y);
}

char* putDigits(char* o, unsigned v, int width) {
  for (int i = width - 1; i >= 0; i--) {
    o[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return o + width;
}

// YYYY-MM-DD HH:MM:SS.ffffff+00 (UTC); `us` is below kTimestampLimitUs.
char* putTimestamp(char* o, uint64_t us) {
  const uint64_t secs = us / 1000000;
  const auto micros = static_cast<unsigned>(us % 1000000);
  const auto secOfDay = static_cast<unsigned>(secs % 86400);
  // The date changes once a day: kept as text for the day last seen.
  thread_local uint64_t lastDay = UINT64_MAX;
  thread_local char date[11];
  if (secs / 86400 != lastDay) {
    unsigned year;
    unsigned month;
    unsigned day;
    lastDay = secs / 86400;
    dateFromDays(lastDay, year, month, day);
    char* d = putDigits(date, year, 4);
    *d++ = '-';
    d = putDigits(d, month, 2);
    *d++ = '-';
    d = putDigits(d, day, 2);
    *d = ' ';
  }
  memcpy(o, date, sizeof(date));
  o += sizeof(date);
  o = putDigits(o, secOfDay / 3600, 2);
  *o++ = ':';
  o = putDigits(o, secOfDay / 60 % 60, 2);
  *o++ = ':';
  o = putDigits(o, secOfDay % 60, 2);
  *o++ = '.';
  o = putDigits(o, micros, 6);
  memcpy(o, "+00", 3);
  return o + 3;
}

// ---------------------------------------------------------------- metadata

// RapidJSON output stream that escapes backslashes for COPY.  The writer
// never emits raw control characters, so backslash is all there is to do.
struct CopyJsonStream {
  using Ch = char;
  void Put(char c) {
    if (c == '\\') {
      out->append("\\\\", 2);
    } else {
      out->push_back(c);
    }
  }
  void Flush() {}
  std::string* out{nullptr};
};

using CopyJsonWriter = rapidjson::Writer<CopyJsonStream, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                         rapidjson::CrtAllocator,
                                         rapidjson::kWriteValidateEncodingFlag>;

// True when PostgreSQL's numeric (the type of jsonb numbers) accepts the
// JSON number `s`: at most 16383 digits after the decimal point once the
// exponent is applied, and at most 131072 before it.
bool fitsNumeric(const char* s, size_t n) {
  constexpr int64_t kMaxScale = 16383;
  constexpr int64_t kMaxWeight = 131072;
  size_t i = 0;
  if (i < n && s[i] == '-') {
    i++;
  }
  int64_t whole = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    whole++;
    i++;
  }
  int64_t frac = 0;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      frac++;
      i++;
    }
  }
  int64_t exp = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool minus = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      minus = s[i] == '-';
      i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      exp = std::min<int64_t>(exp * 10 + (s[i] - '0'), 10 * kMaxWeight); // saturate
      i++;
    }
    if (minus) {
      exp = -exp;
    }
  }
  return frac - exp <= kMaxScale && whole + exp <= kMaxWeight;
}

// SAX handler copying one JSON object to the writer, refusing what jsonb
// cannot store or what is not an object.
class MetadataCopier {
public:
  explicit MetadataCopier(CopyJsonWriter& w) : w_(w) {}

  bool Null() { return value() && w_.Null(); }
  bool Bool(bool b) { return value() && w_.Bool(b); }
  bool Int(int i) { return value() && w_.Int(i); }
  bool Uint(unsigned u) { return value() && w_.Uint(u); }
  bool Int64(int64_t i) { return value() && w_.Int64(i); }
  bool Uint64(uint64_t u) { return value() && w_.Uint64(u); }
  bool Double(double d) { return value() && w_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    // Writer::RawNumber would quote it; RawValue writes it verbatim.
    return value() && fitsNumeric(s, n) && w_.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return value() && noNul(s, n) && w_.String(s, n);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) { return noNul(s, n) && w_.Key(s, n); }
  bool StartObject() {
    root_seen_ = true;
    return ++depth_ <= kMaxJsonDepth && w_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    depth_--;
    return w_.EndObject(n);
  }
  bool StartArray() { return value() && ++depth_ <= kMaxJsonDepth && w_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    depth_--;
    return w_.EndArray(n);
  }

private:
  // A scalar or array is fine inside the object, never as the root.
  bool value() const { return root_seen_; }
  // jsonb refuses \u0000.
  static bool noNul(const char* s, size_t n) { return memchr(s, '\0', n) == nullptr; }

  CopyJsonWriter& w_;
  unsigned depth_{0};
  bool root_seen_{false};
};

// Reader and writer kept per thread so their stacks are allocated once.
struct MetadataCodec {
  CopyJsonStream stream;
  rapidjson::Reader reader;
  CopyJsonWriter writer{stream};
};

MetadataCodec& metadataCodec() {
  thread_local MetadataCodec codec;
  return codec;
}

// Appends the metadata column: the object written back compactly, or \N.
void appendMetadata(std::string& out, const uint8_t* p, size_t n) {
  const size_t start = out.size();
  // RapidJSON reads NUL as the end of input.
  if (n != 0 && memchr(p, '\0', n) == nullptr) {
    MetadataCodec& c = metadataCodec();
    c.stream.out = &out;
    c.writer.Reset(c.stream);
    MetadataCopier copier(c.writer);
    rapidjson::MemoryStream ms(reinterpret_cast<const char*>(p), n);
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                                rapidjson::kParseValidateEncodingFlag |
                                rapidjson::kParseNumbersAsStringsFlag;
    if (c.reader.Parse<kFlags>(ms, copier) && c.writer.IsComplete()) {
      return;
    }
  }
  out.resize(start);
  out.append("\\N", 2);
}

// ---------------------------------------------------------------- events

constexpr uint16_t kMaxTag = SARK_AUDF_SAME_AS_PREVIOUS;

// Name of each field for messages (its column, or the column it feeds).
constexpr const char* kFieldNames[kMaxTag + 1] = {
    "",
    "id",
    "timestamp",
    "event_type",
    "user_id",
    "agent_id",
    "server_name",
    "tool_name",
    "action",
    "sensitivity_level",
    "decision",
    "reason",
    "cache_layer",
    "latency_us",
    "policy_revision",
    "gateway_request_id",
    "client_ip",
    "metadata",
    "same_as_previous",
};

// The fields SARK_AUDF_SAME_AS_PREVIOUS stands for.
constexpr uint16_t kInherited[] = {
    SARK_AUDF_EVENT_TYPE, SARK_AUDF_USER_ID,  SARK_AUDF_AGENT_ID,
    SARK_AUDF_SERVER_NAME, SARK_AUDF_TOOL_NAME, SARK_AUDF_ACTION,
    SARK_AUDF_SENSITIVITY, SARK_AUDF_DECISION, SARK_AUDF_REASON,
    SARK_AUDF_POLICY_REVISION,
};

// Size of a fixed-width field, -1 for a variable one.
constexpr int fixedWidth(uint16_t tag) {
  switch (tag) {
  case SARK_AUDF_ID:
    return 16;
  case SARK_AUDF_TIMESTAMP:
    return 8;
  case SARK_AUDF_CACHE_LAYER:
    return 1;
  case SARK_AUDF_LATENCY_US:
    return 4;
  case SARK_AUDF_SAME_AS_PREVIOUS:
    return 0;
  default:
    return -1;
  }
}

struct FieldRef {
  const uint8_t* value{nullptr}; // nullptr = absent
  uint32_t len{0};
};

using EventFields = std::array<FieldRef, kMaxTag + 1>;

// Reads the fields of one event and checks them; `prev` is the event before
// it in the batch (nullptr for the first).  On failure `what` says why,
// naming the field.
bool readEvent(const uint8_t* p, size_t len, const EventFields* prev, EventFields& f,
               std::string& what) {
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  while ((rc = sark_tlv_next(p, len, &off, &t)) == SARK_PROTO_OK) {
    if (t.tag == 0 || t.tag > kMaxTag) {
      continue; // a newer field
    }
    const int width = fixedWidth(t.tag);
    if (width >= 0 && t.len != static_cast<uint32_t>(width)) {
      what = std::string(kFieldNames[t.tag]) + " is " + std::to_string(t.len) +
             " bytes, not " + std::to_string(width);
      return false;
    }
    if (t.len > kAuditMaxStringBytes) {
      what = std::string(kFieldNames[t.tag]) + " is longer than 64 KiB";
      return false;
    }
    f[t.tag] = FieldRef{t.value, t.len};
  }
  if (rc != SARK_PROTO_END) {
    what = std::string("fields: ") + sark_proto_strerror(rc);
    return false;
  }
  if (f[SARK_AUDF_SAME_AS_PREVIOUS].value != nullptr) {
    if (prev == nullptr) {
      what = "same_as_previous in the batch's first event";
      return false;
    }
    for (uint16_t tag : kInherited) {
      if (f[tag].value == nullptr) {
        f[tag] = (*prev)[tag];
      }
    }
  }
  if (f[SARK_AUDF_ID].value == nullptr) {
    what = "id is missing";
    return false;
  }
  if (f[SARK_AUDF_TIMESTAMP].value == nullptr) {
    what = "timestamp is missing";
    return false;
  }
  if (sark_get_u64(f[SARK_AUDF_TIMESTAMP].value) >= kTimestampLimitUs) {
    what = "timestamp is after year 9999";
    return false;
  }
  if (f[SARK_AUDF_DECISION].value == nullptr || f[SARK_AUDF_DECISION].len == 0) {
    what = "decision is missing";
    return false;
  }
  if (f[SARK_AUDF_CACHE_LAYER].value != nullptr && f[SARK_AUDF_CACHE_LAYER].value[0] > SARK_CACHE_L2) {
    what = "cache_layer " + std::to_string(f[SARK_AUDF_CACHE_LAYER].value[0]) + " is unknown";
    return false;
  }
  return true;
}

char* putNull(char* o) {
  o[0] = '\\';
  o[1] = 'N';
  return o + 2;
}

// A text column: the field, or `absent` (nullptr: \N) when it is missing.
char* putTextColumn(char* o, const FieldRef& f, const char* absent, size_t max_chars = 0) {
  if (f.value != nullptr) {
    return putText(o, f.value, max_chars == 0 ? f.len : prefixOfChars(f.value, f.len, max_chars));
  }
  if (absent != nullptr) {
    const size_t n = strlen(absent);
    memcpy(o, absent, n);
    return o + n;
  }
  return putNull(o);
}

// Room one row can take: the text fields at their largest, and the rest.
size_t rowBound(const EventFields& f) {
  size_t n = 256; // id, timestamp, separators, defaults, layer, latency, \N
  for (uint16_t tag : {SARK_AUDF_EVENT_TYPE, SARK_AUDF_USER_ID, SARK_AUDF_AGENT_ID,
                       SARK_AUDF_SERVER_NAME, SARK_AUDF_TOOL_NAME, SARK_AUDF_ACTION,
                       SARK_AUDF_SENSITIVITY, SARK_AUDF_DECISION, SARK_AUDF_REASON,
                       SARK_AUDF_POLICY_REVISION, SARK_AUDF_REQUEST_ID, SARK_AUDF_CLIENT_IP}) {
    n += kTextGrowth * f[tag].len;
  }
  return n;
}

// The columns before metadata, each followed by a TAB.
char* putRowHead(char* o, const EventFields& f) {
  o = putUuid(o, f[SARK_AUDF_ID].value);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_EVENT_TYPE], "authorization", kAuditEventTypeMaxChars);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_USER_ID], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_AGENT_ID], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_SERVER_NAME], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_TOOL_NAME], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_ACTION], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_SENSITIVITY], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_DECISION], nullptr, kAuditDecisionMaxChars);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_REASON], "");
  *o++ = '\t';
  if (const uint8_t* layer = f[SARK_AUDF_CACHE_LAYER].value) {
    static constexpr std::string_view kLayers[] = {"MISS", "L1", "L2"};
    memcpy(o, kLayers[*layer].data(), kLayers[*layer].size());
    o += kLayers[*layer].size();
  } else {
    o = putNull(o);
  }
  *o++ = '\t';
  if (const uint8_t* latency = f[SARK_AUDF_LATENCY_US].value) {
    const uint32_t us = std::min<uint32_t>(sark_get_u32(latency), kAuditMaxLatencyUs);
    o = std::to_chars(o, o + 10, us).ptr;
  } else {
    o = putNull(o);
  }
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_POLICY_REVISION], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_REQUEST_ID], "");
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_CLIENT_IP], nullptr);
  *o++ = '\t';
  return o;
}

// One COPY text row, written in place at the end of `out`.
void appendRow(std::string& out, const EventFields& f) {
  const size_t start = out.size();
  out.resize(start + rowBound(f));
  char* o = putRowHead(out.data() + start, f);
  if (f[SARK_AUDF_METADATA].value != nullptr) {
    out.resize(static_cast<size_t>(o - out.data()));
    appendMetadata(out, f[SARK_AUDF_METADATA].value, f[SARK_AUDF_METADATA].len);
    const size_t mid = out.size();
    out.resize(mid + 32);
    o = out.data() + mid;
  } else {
    o = putNull(o);
  }
  *o++ = '\t';
  o = putTimestamp(o, sark_get_u64(f[SARK_AUDF_TIMESTAMP].value));
  *o++ = '\n';
  out.resize(static_cast<size_t>(o - out.data()));
}

} // namespace

bool appendAuditRows(const uint8_t* payload, size_t len, std::string& out, uint32_t& events,
                     std::string& err) {
  const size_t start = out.size();
  events = 0;
  // Rows take about as much room as the TLV they come from.
  out.reserve(start + len + len / 4 + 1024);
  uint32_t n = 0;
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  std::string what;
  EventFields prev{};
  while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
    if (t.tag != SARK_AUD_EVENT) {
      continue; // a newer kind of entry
    }
    n++;
    EventFields fields{};
    if (!readEvent(t.value, t.len, n == 1 ? nullptr : &prev, fields, what)) {
      out.resize(start);
      err = "AUDIT_BATCH event " + std::to_string(n) + ": " + what;
      return false;
    }
    appendRow(out, fields);
    prev = fields;
  }
  if (rc != SARK_PROTO_END) {
    out.resize(start);
    err = std::string("AUDIT_BATCH payload: ") + sark_proto_strerror(rc);
    return false;
  }
  if (n == 0) {
    out.resize(start);
    err = "AUDIT_BATCH holds no event";
    return false;
  }
  events = n;
  return true;
}

} // namespace sark
