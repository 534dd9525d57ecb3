#include "audit/audit_query.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include "core/log.h"
#include "sark_proto.h"

namespace sark {

// 6: every filter of an audit query has an index in the page's order
// ("timestamp" DESC, id DESC after the filtered column).  They replace the
// indexes on user_id, on server_name and on ("timestamp" DESC, user_id),
// which serve nothing these do not (and would tempt the planner into a
// sort for the id order).
const char* const kAuditKeysetSql = R"sql(
CREATE INDEX ix_gateway_audit_keyset
  ON gateway_audit_events ("timestamp" DESC, id DESC);
CREATE INDEX ix_gateway_audit_user_keyset
  ON gateway_audit_events (user_id, "timestamp" DESC, id DESC);
CREATE INDEX ix_gateway_audit_server_keyset
  ON gateway_audit_events (server_name, "timestamp" DESC, id DESC);
CREATE INDEX ix_gateway_audit_tool_keyset
  ON gateway_audit_events (tool_name, "timestamp" DESC, id DESC);
CREATE INDEX ix_gateway_audit_decision_keyset
  ON gateway_audit_events (decision, "timestamp" DESC, id DESC);
DROP INDEX ix_gateway_audit_user_id;
DROP INDEX ix_gateway_audit_server_name;
DROP INDEX ix_gateway_audit_timestamp_user;
)sql";

namespace {

constexpr size_t kConnections = 2;
constexpr size_t kMaxWaiting = 64;
constexpr size_t kTagHex = 32;
// How long a query waits for a free connection (the database may be away).
constexpr uint64_t kWaitMs = 2000;

std::string literal(const std::string& s) {
  // standard_conforming_strings is on for these queries (SET LOCAL): a
  // quote doubled is the only escape; strings never hold NUL (decoder)
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  out += '\'';
  return out;
}

std::string instant(uint64_t us) {
  return "(timestamptz 'epoch' + " + std::to_string(us) + " * interval '1 microsecond')";
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < s.size(); i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool text(const sark_tlv_t& t, std::string& out, bool& has, size_t max = SARK_PROTO_MAX_NAME) {
  std::string_view v(reinterpret_cast<const char*>(t.value), t.len);
  if (v.find('\0') != std::string_view::npos || v.size() > max) {
    return false;
  }
  out.assign(v);
  has = true;
  return true;
}

// the JSON of one row, its timestamp in microseconds and its id
constexpr const char* kColumns =
    "json_build_object('id', id, 'timestamp', to_char(\"timestamp\" AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'event_type', event_type, 'user_id', user_id, "
    "'agent_id', agent_id, 'server_name', server_name, 'tool_name', tool_name, 'action', action, "
    "'sensitivity_level', sensitivity_level, 'decision', decision, 'reason', reason, "
    "'cache_layer', cache_layer, 'latency_us', latency_us, 'policy_revision', policy_revision, "
    "'gateway_request_id', gateway_request_id, 'client_ip', client_ip, 'metadata', metadata)"
    "::text, (extract(epoch FROM \"timestamp\") * 1000000)::bigint, id";

} // namespace

bool decodeAuditQuery(const uint8_t* payload, size_t len, AuditQuery& q, std::string& err) {
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  bool ignored = false;
  uint8_t u8 = 0;
  while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
    bool ok = true;
    switch (t.tag) {
    case SARK_AQ_USER_ID:
      ok = text(t, q.user_id, q.has_user, SARK_AQ_MAX_USER_ID);
      break;
    case SARK_AQ_SERVER_NAME:
      ok = text(t, q.server_name, q.has_server);
      break;
    case SARK_AQ_TOOL_NAME:
      ok = text(t, q.tool_name, q.has_tool);
      break;
    case SARK_AQ_DECISION:
      ok = text(t, q.decision, q.has_decision) && (q.decision == "allow" || q.decision == "deny");
      break;
    case SARK_AQ_CURSOR:
      ok = text(t, q.cursor, ignored);
      break;
    case SARK_AQ_SINCE:
      ok = sark_tlv_u64(&t, &q.since_us);
      break;
    case SARK_AQ_UNTIL:
      ok = sark_tlv_u64(&t, &q.until_us);
      break;
    case SARK_AQ_LIMIT:
      ok = sark_tlv_u32(&t, &q.limit) && q.limit >= 1 && q.limit <= SARK_AQ_MAX_LIMIT;
      break;
    case SARK_AQ_EXPLAIN:
      ok = sark_tlv_u8(&t, &u8);
      q.explain = u8 == 1;
      break;
    default:
      break;
    }
    if (!ok) {
      err = "AUDIT_QUERY_REQ: invalid field " + std::to_string(t.tag);
      return false;
    }
  }
  if (rc != SARK_PROTO_END) {
    err = std::string("AUDIT_QUERY_REQ payload: ") + sark_proto_strerror(rc);
    return false;
  }
  return true;
}

AuditQueries::AuditQueries(EventLoop& loop, const Config& cfg) : loop_(loop), cfg_(cfg) {
  key_ = cfg.cache_l2_hmac_key;
  if (key_.empty()) {
    unsigned char k[32];
    if (getrandom(k, sizeof(k), 0) == static_cast<ssize_t>(sizeof(k))) {
      key_.assign(reinterpret_cast<const char*>(k), sizeof(k));
    }
  }
}

AuditQueries::~AuditQueries() { close(); }

void AuditQueries::start() {
  const std::string& url = cfg_.database_read_url.empty() ? cfg_.database_url
                                                          : cfg_.database_read_url;
  if (url.empty()) {
    return;
  }
  for (size_t i = 0; i < kConnections; i++) {
    auto c = std::make_unique<PgConnection>(loop_, url, pgDisplayName(url),
                                            cfg_.database_statement_timeout_ms,
                                            "audit query " + std::to_string(i));
    c->setCallbacks([this]() { pump(); }, [](std::string_view, bool) {});
    c->start();
    conns_.push_back(std::move(c));
  }
}

void AuditQueries::close() {
  for (auto& c : conns_) {
    c->close();
  }
  while (!waiting_.empty()) {
    Pending p = std::move(waiting_.front());
    waiting_.pop_front();
    loop_.cancelTimer(p.timer);
    p.done(SARK_AQ_DOWN, "sarkd is stopping");
  }
}

std::string AuditQueries::cursorFor(uint64_t ts_us, const std::string& id) const {
  std::string body = std::to_string(ts_us) + "." + id;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &n);
  static const char hex[] = "0123456789abcdef";
  body += '.';
  for (size_t i = 0; i < kTagHex / 2 && i < n; i++) {
    body += hex[mac[i] >> 4];
    body += hex[mac[i] & 0xf];
  }
  return body;
}

bool AuditQueries::buildSql(const AuditQuery& q, std::string& sql, std::string& err) const {
  std::string where;
  if (q.has_user) {
    where += " AND user_id = " + literal(q.user_id);
  }
  if (q.has_server) {
    where += " AND server_name = " + literal(q.server_name);
  }
  if (q.has_tool) {
    where += " AND tool_name = " + literal(q.tool_name);
  }
  if (q.has_decision) {
    where += " AND decision = " + literal(q.decision);
  }
  if (q.since_us) {
    where += " AND \"timestamp\" >= " + instant(q.since_us);
  }
  if (q.until_us) {
    where += " AND \"timestamp\" < " + instant(q.until_us);
  }
  if (!q.cursor.empty()) {
    // "<microseconds>.<uuid>.<tag>", made by cursorFor()
    size_t dot1 = q.cursor.find('.');
    size_t dot2 = dot1 == std::string::npos ? dot1 : q.cursor.find('.', dot1 + 1);
    uint64_t ts = 0;
    if (dot2 == std::string::npos || !parseUint(std::string_view(q.cursor).substr(0, dot1), ts) ||
        !isUuid(std::string_view(q.cursor).substr(dot1 + 1, dot2 - dot1 - 1))) {
      err = "invalid cursor";
      return false;
    }
    std::string id = q.cursor.substr(dot1 + 1, dot2 - dot1 - 1);
    std::string good = cursorFor(ts, id);
    if (good.size() != q.cursor.size() ||
        CRYPTO_memcmp(good.data(), q.cursor.data(), good.size()) != 0) {
      err = "invalid cursor";
      return false;
    }
    where += " AND (\"timestamp\", id) < (" + instant(ts) + ", " + literal(id) + "::uuid)";
  }
  std::string select = std::string("SELECT ") + kColumns +
                       " FROM gateway_audit_events WHERE true" + where +
                       " ORDER BY \"timestamp\" DESC, id DESC LIMIT " +
                       std::to_string(q.limit + 1);
  sql = "BEGIN READ ONLY; SET LOCAL statement_timeout = " +
        std::to_string(cfg_.database_statement_timeout_ms) +
        "; SET LOCAL standard_conforming_strings = on; " +
        (q.explain ? "EXPLAIN " : "") + select + "; COMMIT";
  return true;
}

void AuditQueries::query(const AuditQuery& q, Callback done) {
  std::string sql, err;
  if (!buildSql(q, sql, err)) {
    done(SARK_AQ_INVALID, err);
    return;
  }
  if (conns_.empty()) {
    done(SARK_AQ_DOWN, "no database is configured");
    return;
  }
  if (waiting_.size() >= kMaxWaiting) {
    done(SARK_AQ_DOWN, "too many audit queries waiting");
    return;
  }
  uint64_t id = next_id_++;
  EventLoop::TimerId timer = loop_.addTimer(kWaitMs, [this, id]() {
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
      if (it->id == id) {
        Callback cb = std::move(it->done);
        waiting_.erase(it);
        cb(SARK_AQ_DOWN, "the audit database is not reachable");
        return;
      }
    }
  });
  waiting_.push_back(Pending{q, std::move(sql), std::move(done), id, timer});
  pump();
}

void AuditQueries::pump() {
  for (auto& c : conns_) {
    if (waiting_.empty()) {
      return;
    }
    if (c->ready()) {
      Pending p = std::move(waiting_.front());
      waiting_.pop_front();
      loop_.cancelTimer(p.timer);
      run(*c, std::move(p));
    }
  }
}

void AuditQueries::run(PgConnection& c, Pending p) {
  auto shared = std::make_shared<Pending>(std::move(p));
  bool sent = c.query(shared->sql, {}, cfg_.database_statement_timeout_ms + 1000,
                      [this, shared, &c](PgConnection::Outcome& o) {
    const AuditQuery& q = shared->q;
    if (!o.ok) {
      LogLine(LogLevel::Warn, "audit query failed").str("error", o.error);
      if (!o.conn_lost && c.transactionStatus() != PQTRANS_IDLE) {
        c.query("ROLLBACK", {}, cfg_.database_statement_timeout_ms,
                [](PgConnection::Outcome&) {});
      }
      shared->done(SARK_AQ_DOWN, o.sqlstate == "57014" ? "the audit query took too long"
                                                       : "the audit query failed");
      pump();
      return;
    }
    // BEGIN, SET, SET, the SELECT, COMMIT
    PGresult* res = o.results.size() >= 4 ? o.results[3].get() : nullptr;
    int rows = res ? PQntuples(res) : 0;
    std::string out;
    if (q.explain) {
      out = "{\"plan\":\"";
      for (int i = 0; i < rows; i++) {
        for (const char* s = PQgetvalue(res, i, 0); *s; s++) {
          if (*s == '"' || *s == '\\') {
            out += '\\';
          }
          out += *s;
        }
        out += "\\n";
      }
      out += "\"}";
    } else {
      int shown = rows > static_cast<int>(q.limit) ? static_cast<int>(q.limit) : rows;
      out = "{\"events\":[";
      for (int i = 0; i < shown; i++) {
        if (i) {
          out += ',';
        }
        out.append(PQgetvalue(res, i, 0), static_cast<size_t>(PQgetlength(res, i, 0)));
      }
      out += "],\"next_cursor\":";
      uint64_t ts = 0;
      if (rows > shown && parseUint(PQgetvalue(res, shown - 1, 1), ts)) {
        out += "\"" + cursorFor(ts, PQgetvalue(res, shown - 1, 2)) + "\"";
      } else {
        out += "null";
      }
      out += "}";
    }
    shared->done(SARK_AQ_OK, out);
    pump();
  });
  if (!sent) {
    shared->done(SARK_AQ_DOWN, "the audit database is not reachable");
  }
}

} // namespace sark
