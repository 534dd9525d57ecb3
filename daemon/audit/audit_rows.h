#pragma once

// AUDIT_BATCH payload (shared/sark_proto.h, SARK_AUD_EVENT / SARK_AUDF_*)
// -> rows of PostgreSQL COPY text format for table gateway_audit_events.
//
// One row per event, columns in the order of kAuditCopyColumns, separated
// by tabs and ended by a newline; \N is NULL.  Text is made valid UTF-8
// (invalid bytes and NUL become U+FFFD) and backslash, tab, newline and
// carriage return are escaped, so any input gives exactly one line per
// event with exactly kAuditColumnCount fields.
//
// Every event is checked as the module's audit API checks what gateways
// send (ngx_http_sark_gateway_audit.c), with the bounds the module puts on each
// field.  An event that breaks a rule gets no row: it is an invalid event,
// written as received (same columns; \N where a value cannot be shown) to
// a separate text for an operator, and reported with the field at fault.
// The other events of the batch are unaffected.
//
//   id                 16 bytes, required -> 8-4-4-4-12 lowercase hex
//   "timestamp"        u64 Unix microseconds, required, before year 10000
//                      -> YYYY-MM-DD HH:MM:SS.ffffff+00
//   decision           required: "allow" or "deny"
//   event_type         1 to 50 bytes; absent -> "authorization"
//   sensitivity_level  absent, or "low", "medium", "high" or "critical"
//   cache_layer        absent, or u8 SARK_CACHE_* -> MISS | L1 | L2
//   latency_us         absent, or u32 -> decimal, at most 2^31-1 (the
//                      column is an integer)
//   metadata           absent (NULL), or a JSON object jsonb can hold (no
//                      \u0000, numbers numeric can hold), at most 64 KiB;
//                      written back compactly
//   user_id            at most 8192 bytes (a token's subject; tokens are at
//                      most 8192 bytes)
//   reason             at most 4096 bytes; absent -> ""
//   policy_revision    at most 64 bytes
//   agent_id, server_name, tool_name, action, gateway_request_id,
//   client_ip          at most 256 bytes; gateway_request_id absent -> ""
//   other strings      absent -> NULL
//   same_as_previous   empty, and never in a batch's first event
// Unknown tags are skipped; of a repeated field the last one counts.
// Only a payload whose TLV framing is broken, or that holds no event, is
// malformed as a whole.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sark {

// Column list for COPY ... (<this>) FROM STDIN, in the order rows are encoded.
extern const char* const kAuditCopyColumns;
constexpr size_t kAuditColumnCount = 17;

// Bounds of the fields, in bytes (the module's: NGX_HTTP_SARK_MAX_NAME,
// the token size limit, SARK's varchar(50), the reason limit of sarkd and
// of the audit API, NGX_HTTP_SARK_REVISION_MAX).
constexpr size_t kAuditMaxNameBytes = 256;
constexpr size_t kAuditMaxUserIdBytes = 8192;
constexpr size_t kAuditMaxEventTypeBytes = 50;
constexpr size_t kAuditMaxReasonBytes = 4096;
constexpr size_t kAuditMaxRevisionBytes = 64;
constexpr size_t kAuditMaxMetadataBytes = 64 * 1024;
constexpr uint32_t kAuditMaxLatencyUs = 2147483647;

// One invalid event of a batch.
struct AuditInvalidEvent {
  uint32_t event{0};   // its place in the batch, from 1
  std::string id;      // its id as 8-4-4-4-12 hex, empty when it has none
  const char* field{""}; // the field at fault
  std::string reason;  // what is wrong: printable ASCII, values quoted and cut
};

struct AuditRowsResult {
  uint32_t events{0};                     // rows appended (valid events)
  std::string invalid_rows;               // one row per invalid event, as received
  std::vector<AuditInvalidEvent> invalid; // why, in the same order

  void clear() {
    events = 0;
    invalid_rows.clear();
    invalid.clear();
  }
};

// Decodes one AUDIT_BATCH payload and appends one COPY text-format row
// (tab-separated, \N for NULL, newline-terminated) per valid SARK_AUD_EVENT
// to `out`; invalid events go to `result`.  On a malformed payload returns
// false with `err` set and leaves `out` exactly as it was (and `result`
// empty).
bool appendAuditRows(const uint8_t* payload, size_t len, std::string& out,
                     AuditRowsResult& result, std::string& err);

} // namespace sark
