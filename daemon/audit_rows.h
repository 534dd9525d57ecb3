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
// Column rules:
//   id                 16 bytes, required -> 8-4-4-4-12 lowercase hex
//   "timestamp"        u64 Unix microseconds, required, before year 10000
//                      -> YYYY-MM-DD HH:MM:SS.ffffff+00
//   decision           required, non-empty; cut to 10 characters
//   event_type         absent -> "authorization"; cut to 50 characters
//   reason             absent -> ""
//   gateway_request_id absent -> ""
//   cache_layer        u8 SARK_CACHE_* -> MISS | L1 | L2
//   latency_us         u32 -> decimal, at most 2^31-1 (the column is an
//                      integer)
//   metadata           a JSON object, written back compactly; anything
//                      else (or what jsonb cannot hold, e.g. \u0000) -> NULL
//   other strings      absent -> NULL
// Strings longer than 64 KiB, fixed-width fields of the wrong size, bad
// TLV framing and a batch without events make the whole batch malformed.
// Unknown tags are skipped; of a repeated field the last one counts.

#include <cstddef>
#include <cstdint>
#include <string>

namespace sark {

// Column list for COPY ... (<this>) FROM STDIN, in the order rows are encoded.
extern const char* const kAuditCopyColumns;
constexpr size_t kAuditColumnCount = 17;

// Longest string (or metadata) value an event may carry.
constexpr size_t kAuditMaxStringBytes = 64 * 1024;
// Widths of the columns that have one (varchar(50), varchar(10), integer):
// longer values are cut so that one event can never fail a whole COPY.
constexpr size_t kAuditEventTypeMaxChars = 50;
constexpr size_t kAuditDecisionMaxChars = 10;
constexpr uint32_t kAuditMaxLatencyUs = 2147483647;

// Decodes one AUDIT_BATCH payload and appends one COPY text-format row
// (tab-separated, \N for NULL, newline-terminated) per SARK_AUD_EVENT to
// `out`.  On a malformed payload returns false with `err` set and leaves
// `out` exactly as it was.  `events` receives the number of rows appended
// (0 on failure).
bool appendAuditRows(const uint8_t* payload, size_t len, std::string& out, uint32_t& events,
                     std::string& err);

} // namespace sark
