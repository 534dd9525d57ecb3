#include "audit/audit_rows.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/json_util.h"
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

// Appends the metadata column: the object written back compactly.  False
// (out as it was) when it is not a JSON object jsonb can hold.
bool appendMetadata(std::string& out, const uint8_t* p, size_t n) {
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
      return true;
    }
  }
  out.resize(start);
  return false;
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

// Longest value of a free-text field, 0 for the others.
constexpr size_t maxBytes(uint16_t tag) {
  switch (tag) {
  case SARK_AUDF_EVENT_TYPE:
    return kAuditMaxEventTypeBytes;
  case SARK_AUDF_USER_ID:
    return kAuditMaxUserIdBytes;
  case SARK_AUDF_AGENT_ID:
  case SARK_AUDF_SERVER_NAME:
  case SARK_AUDF_TOOL_NAME:
  case SARK_AUDF_ACTION:
  case SARK_AUDF_REQUEST_ID:
  case SARK_AUDF_CLIENT_IP:
    return kAuditMaxNameBytes;
  case SARK_AUDF_REASON:
    return kAuditMaxReasonBytes;
  case SARK_AUDF_POLICY_REVISION:
    return kAuditMaxRevisionBytes;
  case SARK_AUDF_METADATA:
    return kAuditMaxMetadataBytes;
  default:
    return 0;
  }
}

constexpr std::string_view kSensitivities[] = {"low", "medium", "high", "critical"};
constexpr std::string_view kLayers[] = {"MISS", "L1", "L2"};

struct FieldRef {
  const uint8_t* value{nullptr}; // nullptr = absent
  uint32_t len{0};

  bool has() const { return value != nullptr; }
  bool is(std::string_view s) const {
    return value != nullptr && len == s.size() && memcmp(value, s.data(), len) == 0;
  }
};

using EventFields = std::array<FieldRef, kMaxTag + 1>;

// What makes an event invalid.
struct Problem {
  const char* field{""};
  std::string reason;
};

// A value for a message: printable ASCII as is (quote and backslash
// escaped), any other byte as \xNN, cut after 40 bytes.
std::string quoted(const FieldRef& f) {
  constexpr size_t kShown = 40;
  std::string q = "\"";
  const size_t n = std::min<size_t>(f.len, kShown);
  for (size_t i = 0; i < n; i++) {
    const uint8_t c = f.value[i];
    if (c == '"' || c == '\\') {
      q.push_back('\\');
      q.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      q.push_back(static_cast<char>(c));
    } else {
      q.append("\\x");
      q.push_back(kHexDigits[c >> 4]);
      q.push_back(kHexDigits[c & 0x0f]);
    }
  }
  q.push_back('"');
  if (f.len > kShown) {
    q.append("...");
  }
  return q;
}

bool reject(Problem& p, uint16_t tag, std::string reason) {
  p.field = kFieldNames[tag];
  p.reason = std::string(kFieldNames[tag]) + " " + std::move(reason);
  return false;
}

// Reads the fields of one event into `f` (absent ones stay absent) and
// applies SAME_AS_PREVIOUS from `prev` (the event before it in the batch,
// nullptr for the first).  False, with `p`, when its TLV list is broken:
// `f` then holds what was read before the break.
bool readEvent(const uint8_t* data, size_t len, const EventFields* prev, EventFields& f,
               Problem& p) {
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  while ((rc = sark_tlv_next(data, len, &off, &t)) == SARK_PROTO_OK) {
    if (t.tag != 0 && t.tag <= kMaxTag) { // others: newer fields
      f[t.tag] = FieldRef{t.value, t.len};
    }
  }
  if (f[SARK_AUDF_SAME_AS_PREVIOUS].has() && prev != nullptr) {
    for (uint16_t tag : kInherited) {
      if (!f[tag].has()) {
        f[tag] = (*prev)[tag];
      }
    }
  }
  if (rc != SARK_PROTO_END) {
    p.field = "event";
    p.reason = std::string("event fields: ") + sark_proto_strerror(rc);
    return false;
  }
  return true;
}

// Whether the fields of an event follow the rules (audit_rows.h), except
// metadata being an object, which is checked as it is written.
bool checkEvent(const EventFields& f, bool first, Problem& p) {
  for (uint16_t tag = 1; tag <= kMaxTag; tag++) {
    const int width = fixedWidth(tag);
    if (f[tag].has() && width >= 0 && f[tag].len != static_cast<uint32_t>(width)) {
      return reject(p, tag,
                  "is " + std::to_string(f[tag].len) + " bytes, not " + std::to_string(width));
    }
  }
  if (first && f[SARK_AUDF_SAME_AS_PREVIOUS].has()) {
    return reject(p, SARK_AUDF_SAME_AS_PREVIOUS, "in the batch's first event");
  }
  if (!f[SARK_AUDF_ID].has()) {
    return reject(p, SARK_AUDF_ID, "is missing");
  }
  const FieldRef& ts = f[SARK_AUDF_TIMESTAMP];
  if (!ts.has()) {
    return reject(p, SARK_AUDF_TIMESTAMP, "is missing");
  }
  if (sark_get_u64(ts.value) >= kTimestampLimitUs) {
    return reject(p, SARK_AUDF_TIMESTAMP,
                std::to_string(sark_get_u64(ts.value)) + " us is after year 9999");
  }
  const FieldRef& decision = f[SARK_AUDF_DECISION];
  if (!decision.has()) {
    return reject(p, SARK_AUDF_DECISION, "is missing");
  }
  if (!decision.is("allow") && !decision.is("deny")) {
    return reject(p, SARK_AUDF_DECISION, quoted(decision) + " is not \"allow\" or \"deny\"");
  }
  if (f[SARK_AUDF_EVENT_TYPE].has() && f[SARK_AUDF_EVENT_TYPE].len == 0) {
    return reject(p, SARK_AUDF_EVENT_TYPE, "is empty");
  }
  const FieldRef& sensitivity = f[SARK_AUDF_SENSITIVITY];
  if (sensitivity.has() &&
      std::none_of(std::begin(kSensitivities), std::end(kSensitivities),
                   [&sensitivity](std::string_view s) { return sensitivity.is(s); })) {
    return reject(p, SARK_AUDF_SENSITIVITY,
                quoted(sensitivity) + " is not low, medium, high or critical");
  }
  const FieldRef& layer = f[SARK_AUDF_CACHE_LAYER];
  if (layer.has() && layer.value[0] > SARK_CACHE_L2) {
    return reject(p, SARK_AUDF_CACHE_LAYER, std::to_string(layer.value[0]) + " is unknown");
  }
  for (uint16_t tag = 1; tag <= kMaxTag; tag++) {
    const size_t max = maxBytes(tag);
    if (max != 0 && f[tag].len > max) {
      return reject(p, tag,
                  "is " + std::to_string(f[tag].len) + " bytes, longer than " +
                      std::to_string(max));
    }
  }
  return true;
}

char* putNull(char* o) {
  o[0] = '\\';
  o[1] = 'N';
  return o + 2;
}

// A text column: the field, or `absent` (nullptr: \N) when it is missing.
char* putTextColumn(char* o, const FieldRef& f, const char* absent) {
  if (f.has()) {
    return putText(o, f.value, f.len);
  }
  if (absent != nullptr) {
    const size_t n = strlen(absent);
    memcpy(o, absent, n);
    return o + n;
  }
  return putNull(o);
}

// Room one row can take: the text fields at their largest (metadata too,
// for `as_received`), and the rest.
size_t rowBound(const EventFields& f, bool as_received) {
  size_t n = 256; // id, timestamp, separators, defaults, layer, latency, \N
  for (uint16_t tag : {SARK_AUDF_EVENT_TYPE, SARK_AUDF_USER_ID, SARK_AUDF_AGENT_ID,
                       SARK_AUDF_SERVER_NAME, SARK_AUDF_TOOL_NAME, SARK_AUDF_ACTION,
                       SARK_AUDF_SENSITIVITY, SARK_AUDF_DECISION, SARK_AUDF_REASON,
                       SARK_AUDF_POLICY_REVISION, SARK_AUDF_REQUEST_ID, SARK_AUDF_CLIENT_IP}) {
    n += kTextGrowth * f[tag].len;
  }
  if (as_received) {
    n += kTextGrowth * f[SARK_AUDF_METADATA].len;
  }
  return n;
}

// The columns before metadata, each followed by a TAB.  Fields of the
// wrong width (only in an invalid event) are \N.
char* putRowHead(char* o, const EventFields& f) {
  if (f[SARK_AUDF_ID].len == 16) {
    o = putUuid(o, f[SARK_AUDF_ID].value);
  } else {
    o = putNull(o);
  }
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_EVENT_TYPE], "authorization");
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
  o = putTextColumn(o, f[SARK_AUDF_DECISION], nullptr);
  *o++ = '\t';
  o = putTextColumn(o, f[SARK_AUDF_REASON], "");
  *o++ = '\t';
  const FieldRef& layer = f[SARK_AUDF_CACHE_LAYER];
  if (layer.len == 1 && layer.value[0] <= SARK_CACHE_L2) {
    memcpy(o, kLayers[layer.value[0]].data(), kLayers[layer.value[0]].size());
    o += kLayers[layer.value[0]].size();
  } else if (layer.len == 1) {
    o = std::to_chars(o, o + 3, layer.value[0]).ptr;
  } else {
    o = putNull(o);
  }
  *o++ = '\t';
  if (f[SARK_AUDF_LATENCY_US].len == 4) {
    const uint32_t us =
        std::min<uint32_t>(sark_get_u32(f[SARK_AUDF_LATENCY_US].value), kAuditMaxLatencyUs);
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

// The timestamp column and the newline: \N when there is no usable one
// (only in an invalid event).
char* putRowTail(char* o, const EventFields& f) {
  *o++ = '\t';
  const FieldRef& ts = f[SARK_AUDF_TIMESTAMP];
  if (ts.len == 8 && sark_get_u64(ts.value) < kTimestampLimitUs) {
    o = putTimestamp(o, sark_get_u64(ts.value));
  } else {
    o = putNull(o);
  }
  *o++ = '\n';
  return o;
}

// One COPY text row of a valid event, written in place at the end of
// `out`.  False (out as it was) when its metadata is not an object.
bool appendRow(std::string& out, const EventFields& f) {
  const size_t start = out.size();
  out.resize(start + rowBound(f, false));
  char* o = putRowHead(out.data() + start, f);
  if (f[SARK_AUDF_METADATA].has()) {
    out.resize(static_cast<size_t>(o - out.data()));
    if (!appendMetadata(out, f[SARK_AUDF_METADATA].value, f[SARK_AUDF_METADATA].len)) {
      out.resize(start);
      return false;
    }
    const size_t mid = out.size();
    out.resize(mid + 48);
    o = out.data() + mid;
  } else {
    o = putNull(o);
  }
  o = putRowTail(o, f);
  out.resize(static_cast<size_t>(o - out.data()));
  return true;
}

// The row of an invalid event, its values as they came (metadata as text).
void appendInvalidRow(std::string& out, const EventFields& f) {
  const size_t start = out.size();
  out.resize(start + rowBound(f, true));
  char* o = putRowHead(out.data() + start, f);
  o = putTextColumn(o, f[SARK_AUDF_METADATA], nullptr);
  o = putRowTail(o, f);
  out.resize(static_cast<size_t>(o - out.data()));
}

std::string idText(const FieldRef& id) {
  if (id.len != 16) {
    return {};
  }
  char text[36];
  putUuid(text, id.value);
  return std::string(text, sizeof(text));
}

} // namespace

bool appendAuditRows(const uint8_t* payload, size_t len, std::string& out,
                     AuditRowsResult& result, std::string& err) {
  const size_t start = out.size();
  result.clear();
  // Rows take about as much room as the TLV they come from.
  out.reserve(start + len + len / 4 + 1024);
  uint32_t n = 0;
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  EventFields prev{};
  Problem problem;
  while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
    if (t.tag != SARK_AUD_EVENT) {
      continue; // a newer kind of entry
    }
    n++;
    EventFields fields{};
    bool ok = readEvent(t.value, t.len, n == 1 ? nullptr : &prev, fields, problem) &&
              checkEvent(fields, n == 1, problem);
    if (ok && !appendRow(out, fields)) {
      ok = false;
      problem.field = kFieldNames[SARK_AUDF_METADATA];
      problem.reason = "metadata is not a JSON object jsonb can store (\\u0000, a number out "
                       "of range, nesting deeper than 512)";
    }
    if (ok) {
      result.events++;
    } else {
      appendInvalidRow(result.invalid_rows, fields);
      result.invalid.push_back(AuditInvalidEvent{n, idText(fields[SARK_AUDF_ID]), problem.field,
                                                 std::move(problem.reason)});
      problem = Problem{};
    }
    prev = fields;
  }
  if (rc != SARK_PROTO_END) {
    out.resize(start);
    result.clear();
    err = std::string("AUDIT_BATCH payload: ") + sark_proto_strerror(rc);
    return false;
  }
  if (n == 0) {
    out.resize(start);
    err = "AUDIT_BATCH holds no event";
    return false;
  }
  return true;
}

} // namespace sark
