// Unit tests for sarkd's AUDIT_BATCH decoder (daemon/audit/audit_rows.cc):
// the COPY text rows it produces, its defaults, escaping and UTF-8 repair,
// the rule of each field (an invalid event gets no row and is reported, the
// others of its batch are kept), and its refusal of malformed batches.

#include <check.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_rows.h"
#include "sark_proto.h"

// Compares as std::string (the actual value is often a temporary) and
// shows the start of both on failure.
#define ASSERT_STR(actual, expected)                                                        \
  do {                                                                                      \
    const std::string a_ = (actual);                                                        \
    const std::string e_ = (expected);                                                      \
    ck_assert_msg(a_ == e_, "got \"%.300s\", want \"%.300s\"", a_.c_str(), e_.c_str());     \
  } while (0)

namespace {

// TLV list builder.
class Tlv {
public:
  Tlv& raw(uint16_t tag, std::string_view value) {
    uint8_t hdr[SARK_PROTO_TLV_HDR_LEN];
    sark_put_u16(hdr, tag);
    sark_put_u32(hdr + 2, static_cast<uint32_t>(value.size()));
    bytes_.append(reinterpret_cast<const char*>(hdr), sizeof(hdr));
    bytes_.append(value);
    return *this;
  }
  Tlv& u8(uint16_t tag, uint8_t v) { return raw(tag, std::string(1, static_cast<char>(v))); }
  Tlv& u32(uint16_t tag, uint32_t v) {
    uint8_t b[4];
    sark_put_u32(b, v);
    return raw(tag, std::string_view(reinterpret_cast<const char*>(b), 4));
  }
  Tlv& u64(uint16_t tag, uint64_t v) {
    uint8_t b[8];
    sark_put_u64(b, v);
    return raw(tag, std::string_view(reinterpret_cast<const char*>(b), 8));
  }
  Tlv& event(const Tlv& fields) { return raw(SARK_AUD_EVENT, fields.bytes()); }
  const std::string& bytes() const { return bytes_; }

private:
  std::string bytes_;
};

const std::string kId("\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10", 16);
const char kIdText[] = "01234567-89ab-cdef-fedc-ba9876543210";
constexpr uint64_t kTs = 1709210096ull * 1000000 + 789012; // 2024-02-29 12:34:56.789012
const char kTsText[] = "2024-02-29 12:34:56.789012+00";

// An event with only the required fields.
Tlv minimal(std::string_view decision = "deny") {
  Tlv e;
  e.raw(SARK_AUDF_ID, kId).u64(SARK_AUDF_TIMESTAMP, kTs).raw(SARK_AUDF_DECISION, decision);
  return e;
}

Tlv batchOf(const Tlv& event) {
  Tlv b;
  b.event(event);
  return b;
}

// Decodes `payload`; `events` is the number of valid rows, and any invalid
// event fails the test unless `result` is given to receive them.
bool decode(const std::string& payload, std::string& out, uint32_t& events, std::string& err,
            sark::AuditRowsResult* result = nullptr) {
  sark::AuditRowsResult r;
  bool ok = sark::appendAuditRows(reinterpret_cast<const uint8_t*>(payload.data()),
                                  payload.size(), out, r, err);
  events = r.events;
  if (result != nullptr) {
    *result = r;
  } else if (!r.invalid.empty()) {
    ck_abort_msg("event %u invalid: %s", r.invalid[0].event, r.invalid[0].reason.c_str());
  }
  return ok;
}

// Decodes a batch of one event and returns its row (without the newline).
std::string rowOf(const Tlv& event) {
  std::string out;
  uint32_t events = 0;
  std::string err;
  bool ok = decode(batchOf(event).bytes(), out, events, err);
  ck_assert_msg(ok, "decode failed: %s", err.c_str());
  ck_assert_uint_eq(events, 1);
  ck_assert(!out.empty() && out.back() == '\n');
  out.pop_back();
  return out;
}

// Decodes a batch of one event that must be invalid; returns what was
// reported, and its row as received in `row` (without the newline).
sark::AuditInvalidEvent invalidOf(const Tlv& event, std::string* row = nullptr) {
  std::string out = "kept\n";
  uint32_t events = 0;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert_msg(decode(batchOf(event).bytes(), out, events, err, &r), "%s", err.c_str());
  ck_assert_msg(r.invalid.size() == 1, "%zu invalid events", r.invalid.size());
  ck_assert_uint_eq(events, 0);
  ck_assert_msg(out == "kept\n", "an invalid event got a row: %s", out.c_str());
  ck_assert_uint_eq(r.invalid[0].event, 1);
  ck_assert(!r.invalid_rows.empty() && r.invalid_rows.back() == '\n');
  if (row != nullptr) {
    *row = r.invalid_rows.substr(0, r.invalid_rows.size() - 1);
  }
  return r.invalid[0];
}

// The field an invalid one-event batch is reported for.
std::string invalidField(const Tlv& event) { return invalidOf(event).field; }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    if (at == std::string::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// Column values of a one-event batch, by column index.
std::vector<std::string> columnsOf(const Tlv& event) {
  std::vector<std::string> cols = split(rowOf(event), '\t');
  ck_assert_uint_eq(cols.size(), sark::kAuditColumnCount);
  return cols;
}

enum Col {
  kColId,
  kColEventType,
  kColUserId,
  kColAgentId,
  kColServer,
  kColTool,
  kColAction,
  kColSensitivity,
  kColDecision,
  kColReason,
  kColCacheLayer,
  kColLatency,
  kColRevision,
  kColRequestId,
  kColClientIp,
  kColMetadata,
  kColTimestamp,
};

std::string metadataOf(std::string_view json) {
  Tlv e = minimal();
  e.raw(SARK_AUDF_METADATA, json);
  return columnsOf(e)[kColMetadata];
}

// Whether `s` is well-formed UTF-8 (checked independently of the decoder).
bool validUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >> 5 == 0x6) {
      n = 2;
      cp = c & 0x1f;
    } else if (c >> 4 == 0xe) {
      n = 3;
      cp = c & 0x0f;
    } else if (c >> 3 == 0x1e) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) {
      return false;
    }
    for (size_t k = 1; k < n; k++) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b >> 6 != 0x2) {
        return false;
      }
      cp = (cp << 6) | (b & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n;
  }
  return true;
}

} // namespace

// ---------------------------------------------------------------- rows

START_TEST(test_columns) {
  ASSERT_STR(sark::kAuditCopyColumns,
                   "id, event_type, user_id, agent_id, server_name, tool_name, action, "
                   "sensitivity_level, decision, reason, cache_layer, latency_us, "
                   "policy_revision, gateway_request_id, client_ip, metadata, \"timestamp\"");
  ck_assert_uint_eq(split(sark::kAuditCopyColumns, ',').size(), sark::kAuditColumnCount);
}
END_TEST

START_TEST(test_full_event) {
  Tlv e;
  e.raw(SARK_AUDF_ID, kId)
      .u64(SARK_AUDF_TIMESTAMP, kTs)
      .raw(SARK_AUDF_EVENT_TYPE, "authorization")
      .raw(SARK_AUDF_USER_ID, "user_123")
      .raw(SARK_AUDF_AGENT_ID, "agent-7")
      .raw(SARK_AUDF_SERVER_NAME, "postgres")
      .raw(SARK_AUDF_TOOL_NAME, "execute_query")
      .raw(SARK_AUDF_ACTION, "gateway:tool:invoke")
      .raw(SARK_AUDF_SENSITIVITY, "high")
      .raw(SARK_AUDF_DECISION, "allow")
      .raw(SARK_AUDF_REASON, "Allowed: analyst")
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_L1)
      .u32(SARK_AUDF_LATENCY_US, 1234)
      .raw(SARK_AUDF_POLICY_REVISION, "7f68a6ccae9080c4")
      .raw(SARK_AUDF_REQUEST_ID, "req-42")
      .raw(SARK_AUDF_CLIENT_IP, "10.0.0.1")
      .raw(SARK_AUDF_METADATA, "{\"k\": \"v\"}");
  ASSERT_STR(rowOf(e).c_str(),
                   "01234567-89ab-cdef-fedc-ba9876543210\tauthorization\tuser_123\tagent-7\t"
                   "postgres\texecute_query\tgateway:tool:invoke\thigh\tallow\tAllowed: analyst\t"
                   "L1\t1234\t7f68a6ccae9080c4\treq-42\t10.0.0.1\t{\"k\":\"v\"}\t"
                   "2024-02-29 12:34:56.789012+00");
}
END_TEST

START_TEST(test_defaults_and_nulls) {
  ASSERT_STR(rowOf(minimal()).c_str(),
                   "01234567-89ab-cdef-fedc-ba9876543210\tauthorization\t\\N\t\\N\t\\N\t\\N\t"
                   "\\N\t\\N\tdeny\t\t\\N\t\\N\t\\N\t\t\\N\t\\N\t"
                   "2024-02-29 12:34:56.789012+00");
  // Present but empty strings are empty, not NULL.
  Tlv e = minimal();
  e.raw(SARK_AUDF_USER_ID, "").raw(SARK_AUDF_REASON, "").raw(SARK_AUDF_REQUEST_ID, "");
  std::vector<std::string> cols = columnsOf(e);
  ASSERT_STR(cols[kColUserId].c_str(), "");
  ASSERT_STR(cols[kColReason].c_str(), "");
  ASSERT_STR(cols[kColRequestId].c_str(), "");
}
END_TEST

START_TEST(test_escaping) {
  Tlv e = minimal();
  e.raw(SARK_AUDF_REASON, "a\\b\tc\nd\re \x01\x7f|\\N");
  // Other control characters are plain text in COPY: kept as they are.
  ASSERT_STR(columnsOf(e)[kColReason].c_str(), "a\\\\b\\tc\\nd\\re \x01\x7f|\\\\N");
  Tlv only = minimal();
  only.raw(SARK_AUDF_TOOL_NAME, "\\").raw(SARK_AUDF_SERVER_NAME, "\t\n");
  std::vector<std::string> cols = columnsOf(only);
  ASSERT_STR(cols[kColTool].c_str(), "\\\\");
  ASSERT_STR(cols[kColServer].c_str(), "\\t\\n");
}
END_TEST

struct Utf8Case {
  std::string in;
  const char* out;
};

const Utf8Case kUtf8Cases[] = {
    {"plain", "plain"},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
    {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf"}, // U+FFFF, U+10FFFF
    {std::string("a\0b", 3), "a\xef\xbf\xbd" "b"},                     // NUL
    {"a\xff" "b", "a\xef\xbf\xbd" "b"},                                 // never valid
    {"\x80", "\xef\xbf\xbd"},                                           // lone continuation
    {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                           // overlong NUL
    {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},           // overlong
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},           // surrogate
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, // > U+10FFFF
    {"ab\xc3", "ab\xef\xbf\xbd"},                                       // cut at the end
    {"\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx"},                         // cut short
    {"\xc3\t", "\xef\xbf\xbd\\t"},                                      // then an escape
};

START_TEST(test_utf8_replacement) {
  const Utf8Case& c = kUtf8Cases[_i];
  Tlv e = minimal();
  e.raw(SARK_AUDF_USER_ID, c.in);
  ASSERT_STR(columnsOf(e)[kColUserId].c_str(), c.out);
}
END_TEST

struct TimeCase {
  uint64_t us;
  const char* text;
};

const TimeCase kTimeCases[] = {
    {0, "1970-01-01 00:00:00.000000+00"},
    {1, "1970-01-01 00:00:00.000001+00"},
    {68191628ull * 1000000 + 500000, "1972-02-29 06:07:08.500000+00"},
    {946684799ull * 1000000 + 999999, "1999-12-31 23:59:59.999999+00"},
    {951782400ull * 1000000, "2000-02-29 00:00:00.000000+00"},
    {951868800ull * 1000000 + 10, "2000-03-01 00:00:00.000010+00"},
    {1709210096ull * 1000000 + 789012, "2024-02-29 12:34:56.789012+00"},
    {1795730400ull * 1000000 + 123, "2026-11-26 22:00:00.000123+00"},
    {4107542399ull * 1000000, "2100-02-28 23:59:59.000000+00"},
    {4107542400ull * 1000000, "2100-03-01 00:00:00.000000+00"},
    {253402300799ull * 1000000 + 999999, "9999-12-31 23:59:59.999999+00"},
};

START_TEST(test_timestamp_format) {
  const TimeCase& c = kTimeCases[_i];
  Tlv e;
  e.raw(SARK_AUDF_ID, kId).raw(SARK_AUDF_DECISION, "allow").u64(SARK_AUDF_TIMESTAMP, c.us);
  ASSERT_STR(columnsOf(e)[kColTimestamp].c_str(), c.text);
}
END_TEST

START_TEST(test_timestamp_matches_gmtime) {
  std::mt19937_64 rng(20261126);
  std::uniform_int_distribution<uint64_t> dist(0, 253402300799ull * 1000000 + 999999);
  for (int i = 0; i < 2000; i++) {
    const uint64_t us = dist(rng);
    const time_t secs = static_cast<time_t>(us / 1000000);
    struct tm tm;
    ck_assert(gmtime_r(&secs, &tm) != nullptr);
    char want[64];
    snprintf(want, sizeof(want), "%04d-%02d-%02d %02d:%02d:%02d.%06u+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             static_cast<unsigned>(us % 1000000));
    Tlv e;
    e.raw(SARK_AUDF_ID, kId).raw(SARK_AUDF_DECISION, "allow").u64(SARK_AUDF_TIMESTAMP, us);
    ASSERT_STR(columnsOf(e)[kColTimestamp].c_str(), want);
  }
}
END_TEST

START_TEST(test_uuid_format) {
  ASSERT_STR(columnsOf(minimal())[kColId].c_str(), kIdText);
  Tlv e;
  e.raw(SARK_AUDF_ID, std::string(16, '\0')).u64(SARK_AUDF_TIMESTAMP, kTs);
  e.raw(SARK_AUDF_DECISION, "allow");
  ASSERT_STR(columnsOf(e)[kColId].c_str(), "00000000-0000-0000-0000-000000000000");
  Tlv f;
  f.raw(SARK_AUDF_ID, std::string(16, '\xff')).u64(SARK_AUDF_TIMESTAMP, kTs);
  f.raw(SARK_AUDF_DECISION, "allow");
  ASSERT_STR(columnsOf(f)[kColId].c_str(), "ffffffff-ffff-ffff-ffff-ffffffffffff");
}
END_TEST

START_TEST(test_cache_layers_and_latency) {
  const char* const names[] = {"MISS", "L1", "L2"};
  for (uint8_t layer = 0; layer <= 2; layer++) {
    Tlv e = minimal();
    e.u8(SARK_AUDF_CACHE_LAYER, layer);
    ASSERT_STR(columnsOf(e)[kColCacheLayer].c_str(), names[layer]);
  }
  Tlv z = minimal();
  z.u32(SARK_AUDF_LATENCY_US, 0);
  ASSERT_STR(columnsOf(z)[kColLatency].c_str(), "0");
  // The column is a signed integer: larger values are capped.
  Tlv top = minimal();
  top.u32(SARK_AUDF_LATENCY_US, 2147483647u);
  ASSERT_STR(columnsOf(top)[kColLatency], "2147483647");
  Tlv m = minimal();
  m.u32(SARK_AUDF_LATENCY_US, 4294967295u);
  ASSERT_STR(columnsOf(m)[kColLatency], "2147483647");
}
END_TEST

START_TEST(test_event_type_bounds) {
  // 1 to 50 bytes (SARK's varchar(50), the audit API's limit).
  Tlv exact = minimal();
  exact.raw(SARK_AUDF_EVENT_TYPE, std::string(50, 'x'));
  ASSERT_STR(columnsOf(exact)[kColEventType], std::string(50, 'x'));
  Tlv tool = minimal();
  tool.raw(SARK_AUDF_EVENT_TYPE, "tool_invoke");
  ASSERT_STR(columnsOf(tool)[kColEventType], "tool_invoke");
  ASSERT_STR(invalidField(Tlv(minimal()).raw(SARK_AUDF_EVENT_TYPE, std::string(51, 'x'))),
             "event_type");
  ASSERT_STR(invalidField(Tlv(minimal()).raw(SARK_AUDF_EVENT_TYPE, "")), "event_type");
  // 50 characters but 51 bytes
  ASSERT_STR(invalidField(Tlv(minimal()).raw(SARK_AUDF_EVENT_TYPE,
                                             std::string(49, 'e') + "\xc3\xa9")),
             "event_type");
}
END_TEST

START_TEST(test_metadata_valid) {
  ASSERT_STR(metadataOf("{ \"a\" : 1 , \"b\" : [ true, null, \"x\", {} ] }").c_str(),
                   "{\"a\":1,\"b\":[true,null,\"x\",{}]}");
  ASSERT_STR(metadataOf("{\n\t\"a\": {\"b\": []}\r\n}").c_str(), "{\"a\":{\"b\":[]}}");
  ASSERT_STR(metadataOf("{}").c_str(), "{}");
  // Backslashes of JSON escapes are doubled for COPY.
  ASSERT_STR(metadataOf("{\"p\":\"a\\\\b\"}").c_str(), "{\"p\":\"a\\\\\\\\b\"}");
  ASSERT_STR(metadataOf("{\"t\":\"x\\ty\\n\\\"\"}").c_str(),
                   "{\"t\":\"x\\\\ty\\\\n\\\\\"\"}");
  // \u escapes of printable characters come back as UTF-8.
  ASSERT_STR(metadataOf("{\"u\":\"\\u00e9\\ud83d\\ude00\"}").c_str(),
                   "{\"u\":\"\xc3\xa9\xf0\x9f\x98\x80\"}");
  // Numbers are kept exactly as written.
  ASSERT_STR(metadataOf("{\"n\":1.000000000000000000001,\"m\":-0,\"e\":1E+2,"
                              "\"big\":123456789012345678901234567890}")
                       .c_str(),
                   "{\"n\":1.000000000000000000001,\"m\":-0,\"e\":1E+2,"
                   "\"big\":123456789012345678901234567890}");
  // Numbers PostgreSQL's numeric holds: up to 16383 decimals in all.
  ASSERT_STR(metadataOf("{\"a\":1e-1001,\"b\":0.5e-16382,\"c\":100e-16383,\"d\":1e308}"),
             "{\"a\":1e-1001,\"b\":0.5e-16382,\"c\":100e-16383,\"d\":1e308}");
  const std::string scale = "{\"s\":0." + std::string(16382, '0') + "1}";
  ASSERT_STR(metadataOf(scale), scale);
  // Nesting up to the limit is fine.
  std::string deep = "{\"a\":" + std::string(510, '[') + std::string(510, ']') + "}";
  ASSERT_STR(metadataOf(deep).c_str(), deep.c_str());
}
END_TEST

const std::string kBadMetadata[] = {
    "",
    "null",
    "[]",
    "[{}]",
    "1",
    "\"s\"",
    "{",
    "{\"a\":}",
    "{} x",
    "{}{}",
    "{'a':1}",
    "{\"a\":\"\\u0000\"}",
    "{\"\\u0000\":1}",
    std::string("{\"a\":1}\0", 8),
    std::string("{\"a\":\"\0\"}", 9),
    "{\"a\":\"\xff\"}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"x\ty\"}",
    "{\"n\":1e-16384}",
    "{\"n\":1.50e-16382}",
    "{\"n\":-0.0e-16383}",
    "{\"n\":1e-99999999999999999999}",
    "{\"n\":1e400}",
    "{\"n\":0." + std::string(16384, '0') + "1}",
    "{\"a\":" + std::string(600, '[') + std::string(600, ']') + "}",
};

START_TEST(test_metadata_invalid_refuses_event) {
  Tlv e = minimal();
  e.raw(SARK_AUDF_METADATA, kBadMetadata[_i]);
  ASSERT_STR(invalidField(e), "metadata");
}
END_TEST

START_TEST(test_metadata_failure_keeps_other_rows) {
  // A bad metadata value between good events: that event alone is set
  // aside, with its metadata as it came; the rows around it are whole.
  Tlv b;
  Tlv e0 = minimal("allow");
  e0.raw(SARK_AUDF_USER_ID, "before");
  Tlv e1 = minimal("allow");
  e1.raw(SARK_AUDF_METADATA, "{\"a\":[1,2,{\"b\":\"c\\\\d");
  e1.raw(SARK_AUDF_CLIENT_IP, "::1");
  Tlv e2 = minimal("deny");
  e2.raw(SARK_AUDF_METADATA, "{\"ok\":true}");
  b.event(e0).event(e1).event(e2);
  std::string out;
  uint32_t events = 0;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert(decode(b.bytes(), out, events, err, &r));
  ck_assert_uint_eq(events, 2);
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), 3);
  ASSERT_STR(rows[2].c_str(), "");
  std::vector<std::string> c0 = split(rows[0], '\t');
  std::vector<std::string> c2 = split(rows[1], '\t');
  ck_assert_uint_eq(c0.size(), sark::kAuditColumnCount);
  ck_assert_uint_eq(c2.size(), sark::kAuditColumnCount);
  ASSERT_STR(c0[kColUserId], "before");
  ASSERT_STR(c2[kColMetadata].c_str(), "{\"ok\":true}");
  ck_assert_uint_eq(r.invalid.size(), 1);
  ck_assert_uint_eq(r.invalid[0].event, 2);
  ASSERT_STR(r.invalid[0].field, "metadata");
  ASSERT_STR(r.invalid[0].id, kIdText);
  std::vector<std::string> c1 = split(r.invalid_rows.substr(0, r.invalid_rows.size() - 1), '\t');
  ck_assert_uint_eq(c1.size(), sark::kAuditColumnCount);
  ASSERT_STR(c1[kColMetadata], "{\"a\":[1,2,{\"b\":\"c\\\\\\\\d"); // as received, escaped for COPY
  ASSERT_STR(c1[kColClientIp].c_str(), "::1");
}
END_TEST

START_TEST(test_unknown_tags_skipped) {
  Tlv e = minimal();
  e.raw(0, "zero").raw(SARK_AUDF_SAME_AS_PREVIOUS + 1, "future").raw(0xffff, std::string(100, 'x'));
  e.raw(SARK_AUDF_USER_ID, "u");
  Tlv b;
  b.raw(99, "not an event").event(e).raw(0, "").event(minimal("allow")).raw(7, "x");
  std::string out;
  uint32_t events = 0;
  std::string err;
  ck_assert_msg(decode(b.bytes(), out, events, err), "%s", err.c_str());
  ck_assert_uint_eq(events, 2);
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), 3);
  ASSERT_STR(split(rows[0], '\t')[kColUserId].c_str(), "u");
  ASSERT_STR(split(rows[1], '\t')[kColDecision].c_str(), "allow");
}
END_TEST

START_TEST(test_duplicates_last_wins) {
  Tlv e;
  e.raw(SARK_AUDF_ID, std::string(16, '\0'))
      .u64(SARK_AUDF_TIMESTAMP, 0)
      .raw(SARK_AUDF_DECISION, "allow")
      .raw(SARK_AUDF_USER_ID, "first")
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_L2)
      .raw(SARK_AUDF_ID, kId)
      .u64(SARK_AUDF_TIMESTAMP, kTs)
      .raw(SARK_AUDF_DECISION, "deny")
      .raw(SARK_AUDF_USER_ID, "second")
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_MISS);
  std::vector<std::string> cols = columnsOf(e);
  ASSERT_STR(cols[kColId].c_str(), kIdText);
  ASSERT_STR(cols[kColTimestamp].c_str(), kTsText);
  ASSERT_STR(cols[kColDecision].c_str(), "deny");
  ASSERT_STR(cols[kColUserId].c_str(), "second");
  ASSERT_STR(cols[kColCacheLayer].c_str(), "MISS");
}
END_TEST

// The rows of a batch of `want` events (each without its newline).
std::vector<std::string> rowsOf(const Tlv& batch, uint32_t want) {
  std::string out;
  uint32_t events = 0;
  std::string err;
  ck_assert_msg(decode(batch.bytes(), out, events, err), "%s", err.c_str());
  ck_assert_uint_eq(events, want);
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), want + 1);
  rows.pop_back();
  return rows;
}

// An event after `first` in one batch that says SAME_AS_PREVIOUS and
// carries `own` besides its id, timestamp and cache layer: the row of each.
std::vector<std::string> sameAsPrevious(const Tlv& first, const Tlv& own) {
  Tlv second;
  second.raw(SARK_AUDF_ID, std::string(16, '\x22'))
      .u64(SARK_AUDF_TIMESTAMP, kTs + 1)
      .raw(SARK_AUDF_SAME_AS_PREVIOUS, "")
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_L1)
      .raw(SARK_AUDF_SAME_AS_PREVIOUS + 1000, ""); // not a field: skipped
  Tlv b;
  b.event(first).raw(SARK_AUD_EVENT, second.bytes() + own.bytes());
  return rowsOf(b, 2);
}

START_TEST(test_same_as_previous_inherits) {
  Tlv first;
  first.raw(SARK_AUDF_ID, kId)
      .u64(SARK_AUDF_TIMESTAMP, kTs)
      .raw(SARK_AUDF_EVENT_TYPE, "authorization")
      .raw(SARK_AUDF_USER_ID, "user-1")
      .raw(SARK_AUDF_SERVER_NAME, "postgres-mcp")
      .raw(SARK_AUDF_TOOL_NAME, "list_tables")
      .raw(SARK_AUDF_ACTION, "gateway:tool:invoke")
      .raw(SARK_AUDF_SENSITIVITY, "medium")
      .raw(SARK_AUDF_DECISION, "allow")
      .raw(SARK_AUDF_REASON, "Allowed")
      .raw(SARK_AUDF_POLICY_REVISION, "rev-7")
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_MISS)
      .raw(SARK_AUDF_REQUEST_ID, "req-1")
      .raw(SARK_AUDF_CLIENT_IP, "10.0.0.1");
  std::vector<std::string> rows = sameAsPrevious(first, Tlv().raw(SARK_AUDF_REQUEST_ID, "req-2"));
  std::vector<std::string> a = split(rows[0], '\t'), b = split(rows[1], '\t');
  for (int col : {kColEventType, kColUserId, kColAgentId, kColServer, kColTool, kColAction,
                  kColSensitivity, kColDecision, kColReason, kColRevision}) {
    ck_assert_msg(a[col] == b[col], "column %d: %s vs %s", col, a[col].c_str(), b[col].c_str());
  }
  ASSERT_STR(b[kColUserId], "user-1");
  ASSERT_STR(b[kColAgentId], "\\N");
  ASSERT_STR(b[kColRevision], "rev-7");
  // what is the event's own is not inherited
  ASSERT_STR(b[kColId], "22222222-2222-2222-2222-222222222222");
  ASSERT_STR(b[kColCacheLayer], "L1");
  ASSERT_STR(b[kColRequestId], "req-2");
  ASSERT_STR(b[kColClientIp], "\\N");
  ASSERT_STR(b[kColTimestamp], "2024-02-29 12:34:56.789013+00");
}
END_TEST

START_TEST(test_same_as_previous_own_fields_win) {
  Tlv first = minimal("allow");
  first.raw(SARK_AUDF_USER_ID, "user-1").raw(SARK_AUDF_REASON, "first reason");
  std::vector<std::string> rows =
      sameAsPrevious(first, Tlv().raw(SARK_AUDF_DECISION, "deny").raw(SARK_AUDF_USER_ID, ""));
  std::vector<std::string> b = split(rows[1], '\t');
  ASSERT_STR(b[kColDecision], "deny");
  ASSERT_STR(b[kColUserId], "");
  ASSERT_STR(b[kColReason], "first reason");
}
END_TEST

START_TEST(test_same_as_previous_chains) {
  // the third event's "previous" is the second as it was resolved
  Tlv first = minimal("allow");
  first.raw(SARK_AUDF_TOOL_NAME, "t1");
  Tlv same;
  same.raw(SARK_AUDF_ID, kId).u64(SARK_AUDF_TIMESTAMP, kTs).raw(SARK_AUDF_SAME_AS_PREVIOUS, "");
  Tlv b;
  b.event(first).event(same).event(same).event(same);
  std::vector<std::string> rows = rowsOf(b, 4);
  for (size_t i = 0; i < 4; i++) {
    ASSERT_STR(split(rows[i], '\t')[kColTool], "t1");
    ASSERT_STR(split(rows[i], '\t')[kColDecision], "allow");
  }
}
END_TEST

START_TEST(test_appends_after_existing) {
  std::string out = "earlier row\n";
  uint32_t events = 0;
  std::string err;
  Tlv b;
  b.event(minimal()).event(minimal()).event(minimal());
  ck_assert(decode(b.bytes(), out, events, err));
  ck_assert_uint_eq(events, 3);
  ck_assert(out.rfind("earlier row\n", 0) == 0);
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), 5);
}
END_TEST

START_TEST(test_string_limits) {
  struct Bound {
    uint16_t tag;
    size_t max;
    int col;
    const char* field;
  };
  const Bound bounds[] = {
      {SARK_AUDF_USER_ID, sark::kAuditMaxUserIdBytes, kColUserId, "user_id"},
      {SARK_AUDF_AGENT_ID, sark::kAuditMaxNameBytes, kColAgentId, "agent_id"},
      {SARK_AUDF_SERVER_NAME, sark::kAuditMaxNameBytes, kColServer, "server_name"},
      {SARK_AUDF_TOOL_NAME, sark::kAuditMaxNameBytes, kColTool, "tool_name"},
      {SARK_AUDF_ACTION, sark::kAuditMaxNameBytes, kColAction, "action"},
      {SARK_AUDF_REASON, sark::kAuditMaxReasonBytes, kColReason, "reason"},
      {SARK_AUDF_POLICY_REVISION, sark::kAuditMaxRevisionBytes, kColRevision, "policy_revision"},
      {SARK_AUDF_REQUEST_ID, sark::kAuditMaxNameBytes, kColRequestId, "gateway_request_id"},
      {SARK_AUDF_CLIENT_IP, sark::kAuditMaxNameBytes, kColClientIp, "client_ip"},
  };
  ck_assert_uint_eq(sark::kAuditMaxNameBytes, 256);
  ck_assert_uint_eq(sark::kAuditMaxUserIdBytes, 8192);
  ck_assert_uint_eq(sark::kAuditMaxReasonBytes, 4096);
  ck_assert_uint_eq(sark::kAuditMaxRevisionBytes, 64);
  for (const Bound& b : bounds) {
    Tlv ok = minimal();
    ok.raw(b.tag, std::string(b.max, 'v'));
    ck_assert_uint_eq(columnsOf(ok)[b.col].size(), b.max);
    Tlv over = minimal();
    over.raw(b.tag, std::string(b.max + 1, 'v'));
    sark::AuditInvalidEvent e = invalidOf(over);
    ck_assert_msg(e.reason.find(std::to_string(b.max)) != std::string::npos, "%s",
                  e.reason.c_str());
    ASSERT_STR(e.field, b.field);
  }
  Tlv meta = minimal();
  std::string big =
      "{\"a\":\"" + std::string(sark::kAuditMaxMetadataBytes - 8, 'm') + "\"}";
  meta.raw(SARK_AUDF_METADATA, big);
  ASSERT_STR(columnsOf(meta)[kColMetadata].c_str(), big.c_str());
  Tlv huge = minimal();
  huge.raw(SARK_AUDF_METADATA,
           "{\"a\":\"" + std::string(sark::kAuditMaxMetadataBytes, 'm') + "\"}");
  ASSERT_STR(invalidField(huge), "metadata");
}
END_TEST

START_TEST(test_decision_values) {
  ASSERT_STR(columnsOf(minimal("allow"))[kColDecision], "allow");
  ASSERT_STR(columnsOf(minimal("deny"))[kColDecision], "deny");
  for (const char* bad : {"maybe", "Allow", "DENY", "allow ", "", "allowed", "deny\n"}) {
    sark::AuditInvalidEvent e = invalidOf(minimal(bad));
    ASSERT_STR(e.field, "decision");
    ASSERT_STR(e.id, kIdText);
  }
  ck_assert(invalidOf(minimal("maybe")).reason.find("\"maybe\"") != std::string::npos);
  Tlv none;
  none.raw(SARK_AUDF_ID, kId).u64(SARK_AUDF_TIMESTAMP, kTs);
  ASSERT_STR(invalidField(none), "decision");
}
END_TEST

START_TEST(test_sensitivity_values) {
  for (const char* good : {"low", "medium", "high", "critical"}) {
    Tlv e = minimal();
    e.raw(SARK_AUDF_SENSITIVITY, good);
    ASSERT_STR(columnsOf(e)[kColSensitivity], good);
  }
  ASSERT_STR(columnsOf(minimal())[kColSensitivity], "\\N"); // absent: NULL
  for (const char* bad : {"bogus", "MEDIUM", "", "critical!", "lowest"}) {
    Tlv e = minimal();
    e.raw(SARK_AUDF_SENSITIVITY, bad);
    ASSERT_STR(invalidField(e), "sensitivity_level");
  }
}
END_TEST

START_TEST(test_cache_layer_values) {
  for (uint8_t bad : {3, 9, 255}) {
    Tlv e = minimal();
    e.u8(SARK_AUDF_CACHE_LAYER, bad);
    std::string row;
    sark::AuditInvalidEvent inv = invalidOf(e, &row);
    ASSERT_STR(inv.field, "cache_layer");
    ASSERT_STR(split(row, '\t')[kColCacheLayer], std::to_string(bad)); // as received
  }
  ASSERT_STR(invalidField(Tlv(minimal()).raw(SARK_AUDF_CACHE_LAYER, "\1\1")), "cache_layer");
}
END_TEST

START_TEST(test_timestamp_bounds) {
  Tlv last;
  last.raw(SARK_AUDF_ID, kId).raw(SARK_AUDF_DECISION, "allow");
  last.u64(SARK_AUDF_TIMESTAMP, 253402300799ull * 1000000 + 999999);
  ASSERT_STR(columnsOf(last)[kColTimestamp], "9999-12-31 23:59:59.999999+00");
  for (uint64_t bad : {253402300800ull * 1000000, ~0ull}) {
    Tlv e;
    e.raw(SARK_AUDF_ID, kId).raw(SARK_AUDF_DECISION, "allow").u64(SARK_AUDF_TIMESTAMP, bad);
    std::string row;
    sark::AuditInvalidEvent inv = invalidOf(e, &row);
    ASSERT_STR(inv.field, "timestamp");
    ck_assert_msg(inv.reason.find(std::to_string(bad)) != std::string::npos, "%s",
                  inv.reason.c_str());
    ASSERT_STR(split(row, '\t')[kColTimestamp], "\\N");
  }
  Tlv none;
  none.raw(SARK_AUDF_ID, kId).raw(SARK_AUDF_DECISION, "allow");
  ASSERT_STR(invalidField(none), "timestamp");
}
END_TEST

START_TEST(test_invalid_row_as_received) {
  // Everything the event carried, escaped for COPY; no cut, no defaults
  // where a value was given.
  Tlv e;
  e.raw(SARK_AUDF_ID, kId)
      .u64(SARK_AUDF_TIMESTAMP, kTs)
      .raw(SARK_AUDF_DECISION, "maybe\tso")
      .raw(SARK_AUDF_USER_ID, "u\\1")
      .raw(SARK_AUDF_SENSITIVITY, "bogus")
      .raw(SARK_AUDF_REASON, std::string(5000, 'r'))
      .u8(SARK_AUDF_CACHE_LAYER, SARK_CACHE_L2)
      .raw(SARK_AUDF_METADATA, "[1]");
  std::string row;
  sark::AuditInvalidEvent inv = invalidOf(e, &row);
  ASSERT_STR(inv.field, "decision"); // the first rule broken
  std::vector<std::string> c = split(row, '\t');
  ck_assert_uint_eq(c.size(), sark::kAuditColumnCount);
  ASSERT_STR(c[kColId], kIdText);
  ASSERT_STR(c[kColEventType], "authorization");
  ASSERT_STR(c[kColUserId], "u\\\\1");
  ASSERT_STR(c[kColSensitivity], "bogus");
  ASSERT_STR(c[kColDecision], "maybe\\tso");
  ck_assert_uint_eq(c[kColReason].size(), 5000);
  ASSERT_STR(c[kColCacheLayer], "L2");
  ASSERT_STR(c[kColLatency], "\\N");
  ASSERT_STR(c[kColMetadata], "[1]");
  ASSERT_STR(c[kColTimestamp], kTsText);
  // Without a usable id: \N there, and no id reported.
  Tlv short_id = minimal("maybe");
  short_id.raw(SARK_AUDF_ID, "short");
  inv = invalidOf(short_id, &row);
  ASSERT_STR(inv.field, "id");
  ASSERT_STR(inv.id, "");
  ASSERT_STR(split(row, '\t')[kColId], "\\N");
}
END_TEST

START_TEST(test_invalid_reason_is_printable) {
  // The reason goes into log lines, the module's error log and the audit
  // API's answer: printable ASCII only, the value cut.
  const std::string nasty = std::string("x\"\\\n\r\x01\xff\xc3\xa9", 9) + std::string(100, 'y');
  for (uint16_t tag : {SARK_AUDF_DECISION, SARK_AUDF_SENSITIVITY}) {
    Tlv e = minimal();
    e.raw(tag, nasty);
    sark::AuditInvalidEvent inv = invalidOf(e);
    for (char c : inv.reason) {
      ck_assert_msg(c >= 0x20 && c < 0x7f, "byte %02x in \"%s\"", static_cast<unsigned char>(c),
                    inv.reason.c_str());
    }
    ck_assert_msg(inv.reason.size() < 200, "%zu bytes", inv.reason.size());
    ck_assert_msg(inv.reason.find("x\\\"\\\\\\x0a\\x0d\\x01\\xff\\xc3\\xa9") !=
                      std::string::npos,
                  "%s", inv.reason.c_str());
    ck_assert_msg(inv.reason.find("...") != std::string::npos, "%s", inv.reason.c_str());
  }
}
END_TEST

START_TEST(test_valid_and_invalid_in_one_batch) {
  // decision "maybe" between two good events: stored as it never was;
  // the good ones keep their rows, in order.
  Tlv b;
  Tlv e3 = minimal("deny");
  e3.raw(SARK_AUDF_USER_ID, "third");
  b.event(Tlv(minimal("allow")).raw(SARK_AUDF_USER_ID, "first"))
      .event(Tlv(minimal("maybe")).raw(SARK_AUDF_USER_ID, "second"))
      .event(e3);
  std::string out;
  uint32_t events = 0;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert(decode(b.bytes(), out, events, err, &r));
  ck_assert_uint_eq(events, 2);
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), 3);
  ASSERT_STR(split(rows[0], '\t')[kColUserId], "first");
  ASSERT_STR(split(rows[1], '\t')[kColUserId], "third");
  ck_assert(out.find("maybe") == std::string::npos);
  ck_assert_uint_eq(r.invalid.size(), 1);
  ck_assert_uint_eq(r.invalid[0].event, 2);
  ASSERT_STR(r.invalid[0].field, "decision");
  ASSERT_STR(split(r.invalid_rows, '\t')[kColUserId], "second");
  // Every event invalid: no row at all, each reported.
  Tlv all;
  all.event(minimal("maybe")).event(minimal("perhaps")).event(minimal(""));
  out.clear();
  ck_assert(decode(all.bytes(), out, events, err, &r));
  ck_assert_uint_eq(events, 0);
  ck_assert(out.empty());
  ck_assert_uint_eq(r.invalid.size(), 3);
  ck_assert_uint_eq(split(r.invalid_rows, '\n').size(), 4);
}
END_TEST

// ---------------------------------------------------------------- malformed

// A batch refused as a whole: its framing is broken, or it holds no event.
struct BadCase {
  const char* name;
  std::string payload;
};

std::vector<BadCase> malformedBatches() {
  std::vector<BadCase> v;
  v.push_back({"empty payload", ""});
  v.push_back({"only unknown entries", Tlv().raw(99, "x").raw(0, "").bytes()});
  v.push_back({"short TLV header", batchOf(minimal()).bytes() + std::string("\0\1\0", 3)});
  std::string past = batchOf(minimal()).bytes();
  past.pop_back();
  v.push_back({"event runs past the payload", past});
  return v;
}

START_TEST(test_malformed_leaves_out_unchanged) {
  const std::vector<BadCase> cases = malformedBatches();
  ck_assert_int_lt(_i, static_cast<int>(cases.size()));
  const BadCase& c = cases[static_cast<size_t>(_i)];
  std::string out = "kept\trow\n";
  const std::string before = out;
  uint32_t events = 77;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert_msg(!decode(c.payload, out, events, err, &r), "accepted: %s", c.name);
  ck_assert_msg(out == before, "out changed: %s", c.name);
  ck_assert_uint_eq(events, 0);
  ck_assert(r.invalid.empty() && r.invalid_rows.empty());
  ck_assert_msg(!err.empty(), "no message: %s", c.name);
}
END_TEST

// An invalid event after a good one: the good one keeps its row, the
// invalid one is reported for `field`.
struct InvalidCase {
  const char* name;
  std::string payload;
  const char* field;
};

std::vector<InvalidCase> invalidEvents() {
  std::vector<InvalidCase> v;
  auto without = [](uint16_t skip) {
    Tlv e;
    if (skip != SARK_AUDF_ID) {
      e.raw(SARK_AUDF_ID, kId);
    }
    if (skip != SARK_AUDF_TIMESTAMP) {
      e.u64(SARK_AUDF_TIMESTAMP, kTs);
    }
    if (skip != SARK_AUDF_DECISION) {
      e.raw(SARK_AUDF_DECISION, "allow");
    }
    e.raw(SARK_AUDF_USER_ID, "u");
    Tlv b;
    b.event(minimal()).event(e);
    return b.bytes();
  };
  // A good event, then one with `extra` after the required fields.
  auto with = [](const Tlv& extra) {
    Tlv good = minimal();
    good.raw(SARK_AUDF_USER_ID, "u");
    Tlv b;
    b.event(good).raw(SARK_AUD_EVENT, minimal().bytes() + extra.bytes());
    return b.bytes();
  };
  v.push_back({"field runs past its event",
               Tlv().event(minimal())
                   .raw(SARK_AUD_EVENT, minimal().bytes() + std::string("\0\4\0\0\0\x09u", 7))
                   .bytes(),
               "event"});
  v.push_back({"empty event", Tlv().event(minimal()).raw(SARK_AUD_EVENT, "").bytes(), "id"});
  v.push_back({"no id", without(SARK_AUDF_ID), "id"});
  v.push_back({"no timestamp", without(SARK_AUDF_TIMESTAMP), "timestamp"});
  v.push_back({"no decision", without(SARK_AUDF_DECISION), "decision"});
  v.push_back({"empty decision", with(Tlv().raw(SARK_AUDF_DECISION, "")), "decision"});
  v.push_back({"decision maybe", with(Tlv().raw(SARK_AUDF_DECISION, "maybe")), "decision"});
  v.push_back({"id of 15 bytes", with(Tlv().raw(SARK_AUDF_ID, kId.substr(1))), "id"});
  v.push_back({"id of 17 bytes", with(Tlv().raw(SARK_AUDF_ID, kId + "x")), "id"});
  v.push_back({"id as text", with(Tlv().raw(SARK_AUDF_ID, kIdText)), "id"});
  v.push_back({"timestamp of 4 bytes", with(Tlv().u32(SARK_AUDF_TIMESTAMP, 1)), "timestamp"});
  v.push_back({"timestamp in year 10000",
               with(Tlv().u64(SARK_AUDF_TIMESTAMP, 253402300800ull * 1000000)), "timestamp"});
  v.push_back({"timestamp 2^64-1", with(Tlv().u64(SARK_AUDF_TIMESTAMP, ~0ull)), "timestamp"});
  v.push_back({"cache layer of 2 bytes", with(Tlv().raw(SARK_AUDF_CACHE_LAYER, "\1\1")),
               "cache_layer"});
  v.push_back({"cache layer 3", with(Tlv().u8(SARK_AUDF_CACHE_LAYER, 3)), "cache_layer"});
  v.push_back({"cache layer 255", with(Tlv().u8(SARK_AUDF_CACHE_LAYER, 255)), "cache_layer"});
  v.push_back({"latency of 8 bytes", with(Tlv().u64(SARK_AUDF_LATENCY_US, 1)), "latency_us"});
  v.push_back({"latency of 0 bytes", with(Tlv().raw(SARK_AUDF_LATENCY_US, "")), "latency_us"});
  v.push_back({"unknown sensitivity", with(Tlv().raw(SARK_AUDF_SENSITIVITY, "urgent")),
               "sensitivity_level"});
  v.push_back({"empty event_type", with(Tlv().raw(SARK_AUDF_EVENT_TYPE, "")), "event_type"});
  v.push_back({"reason over 4096 bytes",
               with(Tlv().raw(SARK_AUDF_REASON, std::string(sark::kAuditMaxReasonBytes + 1, 'r'))),
               "reason"});
  v.push_back({"metadata over 64 KiB",
               with(Tlv().raw(SARK_AUDF_METADATA,
                              "{\"a\":\"" + std::string(sark::kAuditMaxMetadataBytes, 'm') +
                                  "\"}")),
               "metadata"});
  v.push_back({"metadata an array", with(Tlv().raw(SARK_AUDF_METADATA, "[]")), "metadata"});
  v.push_back({"same_as_previous in the first event",
               Tlv().event(Tlv(minimal()).raw(SARK_AUDF_SAME_AS_PREVIOUS, ""))
                   .event(minimal())
                   .bytes(),
               "same_as_previous"});
  v.push_back({"same_as_previous with a value",
               with(Tlv().raw(SARK_AUDF_SAME_AS_PREVIOUS, "x")), "same_as_previous"});
  {
    // inherits the decision, but has an empty one of its own
    Tlv second;
    second.raw(SARK_AUDF_ID, kId).u64(SARK_AUDF_TIMESTAMP, kTs).raw(SARK_AUDF_SAME_AS_PREVIOUS, "")
        .raw(SARK_AUDF_DECISION, "");
    v.push_back({"same_as_previous with an empty decision of its own",
                 Tlv().event(minimal()).event(second).bytes(), "decision"});
  }
  v.push_back({"unknown tag over 64 KiB is fine, a bad field after it is not",
               with(Tlv().raw(200, std::string(sark::kAuditMaxMetadataBytes + 10, 'x'))
                        .u8(SARK_AUDF_CACHE_LAYER, 9)),
               "cache_layer"});
  return v;
}

START_TEST(test_invalid_event_alone_refused) {
  const std::vector<InvalidCase> cases = invalidEvents();
  ck_assert_int_lt(_i, static_cast<int>(cases.size()));
  const InvalidCase& c = cases[static_cast<size_t>(_i)];
  std::string out = "kept\trow\n";
  uint32_t events = 0;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert_msg(decode(c.payload, out, events, err, &r), "%s: %s", c.name, err.c_str());
  ck_assert_msg(events == 1, "%s: %u rows", c.name, events);
  ck_assert_msg(r.invalid.size() == 1, "%s: %zu invalid", c.name, r.invalid.size());
  ck_assert_msg(std::string(r.invalid[0].field) == c.field, "%s: field %s, want %s", c.name,
                r.invalid[0].field, c.field);
  ck_assert_msg(!r.invalid[0].reason.empty(), "%s: no reason", c.name);
  // the one row is the good event's
  std::vector<std::string> rows = split(out, '\n');
  ck_assert_uint_eq(rows.size(), 3);
  ASSERT_STR(rows[0], "kept\trow");
  ck_assert_uint_eq(split(rows[1], '\t').size(), sark::kAuditColumnCount);
  // and the invalid one is kept as a row of its own
  ck_assert(!r.invalid_rows.empty() && r.invalid_rows.back() == '\n');
  ck_assert_uint_eq(split(r.invalid_rows, '\n').size(), 2);
  ck_assert_uint_eq(split(r.invalid_rows.substr(0, r.invalid_rows.size() - 1), '\t').size(),
                    sark::kAuditColumnCount);
}
END_TEST

START_TEST(test_invalid_message_names_event) {
  Tlv b;
  b.event(minimal()).event(minimal()).event(Tlv(minimal()).raw(SARK_AUDF_ID, "short"));
  std::string out;
  uint32_t events = 0;
  std::string err;
  sark::AuditRowsResult r;
  ck_assert(decode(b.bytes(), out, events, err, &r));
  ck_assert_uint_eq(events, 2);
  ck_assert_uint_eq(r.invalid.size(), 1);
  ck_assert_uint_eq(r.invalid[0].event, 3);
  ASSERT_STR(r.invalid[0].field, "id");
  ck_assert_msg(r.invalid[0].reason.find("id") != std::string::npos, "%s",
                r.invalid[0].reason.c_str());
}
END_TEST

// ---------------------------------------------------------------- robustness

std::string randomText(std::mt19937& rng, size_t max_len) {
  static const char kPieces[][5] = {"a",  "Z",  "\\", "\t", "\n", "\r", "\x01",   "\xc3\xa9",
                                    "\xff", "\xe2\x82", "\xf0\x9f\x98\x80", "N", " ", "{", "\""};
  std::string s;
  const size_t n = rng() % (max_len + 1);
  for (size_t i = 0; i < n; i++) {
    if (rng() % 8 == 0) {
      s.push_back(static_cast<char>(rng() & 0xff));
    } else {
      s += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    }
  }
  return s;
}

std::string randomBatch(std::mt19937& rng) {
  static const char* const kMeta[] = {"{\"a\":1}", "{\"b\":[1,\"x\\\\y\"]}", "[]", "{",
                                      "{\"c\":{\"d\":null}}"};
  Tlv b;
  const int n = 1 + static_cast<int>(rng() % 5);
  for (int i = 0; i < n; i++) {
    Tlv e;
    std::string id(16, '\0');
    for (char& c : id) {
      c = static_cast<char>(rng() & 0xff);
    }
    e.raw(SARK_AUDF_ID, id);
    e.u64(SARK_AUDF_TIMESTAMP, (static_cast<uint64_t>(rng()) << 20) | rng() % 1000000);
    e.raw(SARK_AUDF_DECISION, rng() % 2 ? "allow" : "deny");
    for (uint16_t tag = SARK_AUDF_EVENT_TYPE; tag <= SARK_AUDF_CLIENT_IP; tag++) {
      if (tag == SARK_AUDF_DECISION || rng() % 3 == 0) {
        continue;
      }
      if (tag == SARK_AUDF_SENSITIVITY && rng() % 4 != 0) {
        static const char* const kLevels[] = {"low", "medium", "high", "critical"};
        e.raw(tag, kLevels[rng() % 4]);
      } else if (tag == SARK_AUDF_CACHE_LAYER) {
        e.u8(tag, static_cast<uint8_t>(rng() % 3));
      } else if (tag == SARK_AUDF_LATENCY_US) {
        e.u32(tag, rng());
      } else {
        e.raw(tag, randomText(rng, 12));
      }
    }
    if (rng() % 2) {
      e.raw(SARK_AUDF_METADATA, kMeta[rng() % (sizeof(kMeta) / sizeof(kMeta[0]))]);
    }
    if (i > 0 && rng() % 2) {
      e.raw(SARK_AUDF_SAME_AS_PREVIOUS, "");
    }
    b.event(e);
  }
  return b.bytes();
}

void mutate(std::mt19937& rng, std::string& p) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < edits && !p.empty(); k++) {
    const size_t at = rng() % p.size();
    switch (rng() % 5) {
    case 0: // flip bits
      p[at] = static_cast<char>(p[at] ^ (1u << (rng() % 8)));
      break;
    case 1: // truncate
      p.resize(at);
      break;
    case 2: // insert bytes
      p.insert(at, randomText(rng, 4));
      break;
    case 3: // remove bytes
      p.erase(at, 1 + rng() % 8);
      break;
    default: // random byte
      p[at] = static_cast<char>(rng() & 0xff);
      break;
    }
  }
}

// Checks the lines of `rows` (without the prefix): `n` lines of
// kAuditColumnCount fields, valid UTF-8, no NUL.
std::vector<std::vector<std::string>> checkedLines(std::string rows, size_t n, int iter) {
  std::vector<std::vector<std::string>> out;
  if (n == 0) {
    ck_assert_msg(rows.empty(), "iteration %d: rows without events", iter);
    return out;
  }
  ck_assert(!rows.empty() && rows.back() == '\n');
  ck_assert(memchr(rows.data(), '\0', rows.size()) == nullptr);
  ck_assert_msg(validUtf8(rows), "iteration %d: invalid UTF-8", iter);
  rows.pop_back();
  std::vector<std::string> lines = split(rows, '\n');
  ck_assert_msg(lines.size() == n, "iteration %d: %zu rows for %zu events", iter, lines.size(),
                n);
  for (const std::string& line : lines) {
    out.push_back(split(line, '\t'));
    ck_assert_msg(out.back().size() == sark::kAuditColumnCount, "iteration %d: %zu fields", iter,
                  out.back().size());
  }
  return out;
}

START_TEST(test_randomized_robustness) {
  std::mt19937 rng(4242);
  int accepted = 0;
  int refused = 0;
  int with_invalid = 0;
  for (int iter = 0; iter < 3000; iter++) {
    std::string payload = randomBatch(rng);
    if (iter % 10 != 0) { // every tenth batch stays well-formed
      mutate(rng, payload);
    }
    std::string out = "prefix\n";
    std::string err;
    sark::AuditRowsResult r;
    r.invalid_rows = "stale";
    // A copy of exactly the payload's size, so reads past it are caught.
    std::vector<uint8_t> exact(payload.begin(), payload.end());
    const bool ok = sark::appendAuditRows(exact.data(), exact.size(), out, r, err);
    if (!ok) {
      refused++;
      ck_assert_msg(out == "prefix\n", "iteration %d: out changed on failure", iter);
      ck_assert_uint_eq(r.events, 0);
      ck_assert(r.invalid.empty() && r.invalid_rows.empty());
      ck_assert(!err.empty());
      continue;
    }
    accepted++;
    with_invalid += r.invalid.empty() ? 0 : 1;
    ck_assert(out.rfind("prefix\n", 0) == 0);
    ck_assert_msg(r.events + r.invalid.size() > 0, "iteration %d", iter);
    for (const auto& cols : checkedLines(out.substr(7), r.events, iter)) {
      ck_assert_uint_eq(cols[kColId].size(), 36);
      ck_assert_uint_eq(cols[kColTimestamp].size(), 29);
      ck_assert_msg(cols[kColDecision] == "allow" || cols[kColDecision] == "deny",
                    "iteration %d: decision %s", iter, cols[kColDecision].c_str());
      const std::string& level = cols[kColSensitivity];
      ck_assert_msg(level == "\\N" || level == "low" || level == "medium" || level == "high" ||
                        level == "critical",
                    "iteration %d: sensitivity %s", iter, level.c_str());
      ck_assert(cols[kColCacheLayer] == "\\N" || cols[kColCacheLayer] == "MISS" ||
                cols[kColCacheLayer] == "L1" || cols[kColCacheLayer] == "L2");
      ck_assert(!cols[kColEventType].empty());
      ck_assert(cols[kColReason] != "\\N");
      ck_assert(cols[kColRequestId] != "\\N");
    }
    checkedLines(r.invalid_rows, r.invalid.size(), iter);
    uint32_t last = 0;
    for (const sark::AuditInvalidEvent& e : r.invalid) {
      ck_assert_msg(e.event > last, "iteration %d: events out of order", iter);
      last = e.event;
      ck_assert(*e.field != '\0' && !e.reason.empty());
      for (char c : e.reason) {
        ck_assert_msg(c >= 0x20 && c < 0x7f, "iteration %d: reason byte %02x", iter,
                      static_cast<unsigned char>(c));
      }
    }
    if (iter % 10 == 0) {
      ck_assert(ok);
    }
  }
  ck_assert_int_gt(accepted, 300);
  ck_assert_int_gt(refused, 300);
  ck_assert_int_gt(with_invalid, 300);
}
END_TEST

static Suite* auditRowsSuite() {
  Suite* s = suite_create("sarkd_audit_rows");
  TCase* rows = tcase_create("Rows");
  tcase_add_test(rows, test_columns);
  tcase_add_test(rows, test_full_event);
  tcase_add_test(rows, test_defaults_and_nulls);
  tcase_add_test(rows, test_escaping);
  tcase_add_loop_test(rows, test_utf8_replacement, 0,
                      static_cast<int>(sizeof(kUtf8Cases) / sizeof(kUtf8Cases[0])));
  tcase_add_loop_test(rows, test_timestamp_format, 0,
                      static_cast<int>(sizeof(kTimeCases) / sizeof(kTimeCases[0])));
  tcase_add_test(rows, test_timestamp_matches_gmtime);
  tcase_add_test(rows, test_uuid_format);
  tcase_add_test(rows, test_cache_layers_and_latency);
  tcase_add_test(rows, test_unknown_tags_skipped);
  tcase_add_test(rows, test_duplicates_last_wins);
  tcase_add_test(rows, test_same_as_previous_inherits);
  tcase_add_test(rows, test_same_as_previous_own_fields_win);
  tcase_add_test(rows, test_same_as_previous_chains);
  tcase_add_test(rows, test_appends_after_existing);
  tcase_add_test(rows, test_string_limits);
  tcase_add_test(rows, test_decision_values);
  tcase_add_test(rows, test_sensitivity_values);
  tcase_add_test(rows, test_cache_layer_values);
  tcase_add_test(rows, test_timestamp_bounds);
  tcase_add_test(rows, test_invalid_row_as_received);
  tcase_add_test(rows, test_invalid_reason_is_printable);
  tcase_add_test(rows, test_valid_and_invalid_in_one_batch);
  tcase_add_test(rows, test_event_type_bounds);
  suite_add_tcase(s, rows);

  TCase* meta = tcase_create("Metadata");
  tcase_add_test(meta, test_metadata_valid);
  tcase_add_loop_test(meta, test_metadata_invalid_refuses_event, 0,
                      static_cast<int>(sizeof(kBadMetadata) / sizeof(kBadMetadata[0])));
  tcase_add_test(meta, test_metadata_failure_keeps_other_rows);
  suite_add_tcase(s, meta);

  TCase* bad = tcase_create("Malformed");
  tcase_add_loop_test(bad, test_malformed_leaves_out_unchanged, 0,
                      static_cast<int>(malformedBatches().size()));
  tcase_add_loop_test(bad, test_invalid_event_alone_refused, 0,
                      static_cast<int>(invalidEvents().size()));
  tcase_add_test(bad, test_invalid_message_names_event);
  suite_add_tcase(s, bad);

  TCase* fuzz = tcase_create("Robustness");
  tcase_set_timeout(fuzz, 120);
  tcase_add_test(fuzz, test_randomized_robustness);
  suite_add_tcase(s, fuzz);
  return s;
}

int main() {
  SRunner* sr = srunner_create(auditRowsSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
