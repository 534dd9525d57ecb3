#pragma once

// Audit queries (docs/design.md, Audit queries): one page of
// gateway_audit_events, newest first, filtered by user, server, tool,
// decision and a time range, for AUDIT_QUERY_REQ.  Read from
// DATABASE_READ_URL (a replica) when set, else DATABASE_URL, on
// connections of its own, one query at a time each; a bounded queue
// (full: "busy", a 503).  Pages are keyset-paginated on ("timestamp", id):
// the cursor names the last row of a page, with an HMAC so that a cursor
// is only ever one sarkd made (CACHE_L2_HMAC_KEY when set, else a key of
// this process: cursors then end with it).  Every filter has an index
// whose order is the page's (migration 6), so a page reads about `limit`
// rows whatever the table's size.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "audit/pg_connection.h"
#include "core/config.h"
#include "core/event_loop.h"

namespace sark {

// Migration 6 (audit_schema.h's list).
extern const char* const kAuditKeysetSql;

struct AuditQuery {
  std::string user_id, server_name, tool_name, decision, cursor;
  bool has_user{false}, has_server{false}, has_tool{false}, has_decision{false};
  uint64_t since_us{0}, until_us{0}; // 0 = unbounded
  uint32_t limit{100};
  bool explain{false};
};

// Decodes AUDIT_QUERY_REQ; false (with `err`) for a malformed payload.
bool decodeAuditQuery(const uint8_t* payload, size_t len, AuditQuery& q, std::string& err);

class AuditQueries {
public:
  // status SARK_AQ_*, then the JSON answer or the message
  using Callback = std::function<void(uint8_t status, const std::string& text)>;

  AuditQueries(EventLoop& loop, const Config& cfg);
  ~AuditQueries();
  AuditQueries(const AuditQueries&) = delete;
  AuditQueries& operator=(const AuditQueries&) = delete;

  void start();
  void close();
  void query(const AuditQuery& q, Callback done);

  // The SQL of a page (and whether the cursor was good), for tests and
  // EXPLAIN.  False with `err` for an invalid cursor.
  bool buildSql(const AuditQuery& q, std::string& sql, std::string& err) const;
  std::string cursorFor(uint64_t ts_us, const std::string& id) const;

private:
  struct Pending {
    AuditQuery q;
    std::string sql; // built once, when it is checked
    Callback done;
    uint64_t id{0};
    EventLoop::TimerId timer{0};
  };

  void pump();
  void run(PgConnection& c, Pending p);

  EventLoop& loop_;
  const Config& cfg_;
  std::string key_;
  std::vector<std::unique_ptr<PgConnection>> conns_;
  std::deque<Pending> waiting_;
  uint64_t next_id_{1};
};

} // namespace sark
