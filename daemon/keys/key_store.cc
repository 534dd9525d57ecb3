#include "keys/key_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "audit/pg_connection.h"
#include "core/clock.h"
#include "keys/gateway_keys.h"
#include "proto/frame_builder.h"
#include "sark_proto.h"

namespace sark {
namespace {

constexpr uint64_t kRetryMs = 1000;
constexpr uint64_t kUsesFlushMs = 60 * 1000;
constexpr uint64_t kFirstUseFlushMs = 1000;
// Revocations remembered against loads that began before them.
constexpr uint64_t kRevokedMemoryMs = 3600 * 1000;
// A KEYS frame must stay inside SARK_PROTO_MAX_PAYLOAD (an entry is at
// most 6 + 44 + 64 bytes).
constexpr int kMaxKeys = 30000;
// unsealed messages reload at most this often (ms)
constexpr uint64_t kHintMs = 1000;

constexpr const char* kLoadSql =
    "SELECT id, encode(key_hash, 'hex'), array_to_string(scopes, ','), "
    "coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0) "
    "FROM gateway_keys "
    "WHERE revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > now() - interval '30 days') "
    "ORDER BY id LIMIT 30001";

} // namespace

KeyStore::KeyStore(EventLoop& loop, const Config& cfg, ModuleServer& server)
    : loop_(loop), cfg_(cfg), server_(server), seal_(cfg.cache_l2_hmac_key) {}

KeyStore::~KeyStore() { close(); }

void KeyStore::start() {
  if (cfg_.database_url.empty()) {
    // no database, no keys from it: the workers know the set is empty
    loaded_ = true;
    publish();
    return;
  }
  db_ = std::make_unique<PgConnection>(loop_, cfg_.database_url, pgDisplayName(cfg_.database_url),
                                       cfg_.database_statement_timeout_ms, "keys");
  db_->setCallbacks([this]() { runPending(); }, [](std::string_view, bool) {});
  load_wanted_ = true;
  db_->start();
  uses_timer_ = loop_.addTimer(kUsesFlushMs, [this]() {
    uses_timer_ = 0;
    flushUses();
  });

  if (cfg_.cache_l2_enabled) {
    subscriber_ = std::make_unique<RedisConnection>(loop_, cfg_.redis, cfg_.redis_timeout_ms,
                                                    "keys subscriber");
    subscriber_->setSubscriptions({std::string(kKeysChannel)},
                                  [this](const redisReply* r) { onMessage(r); });
    // (re)subscribed: what was announced meanwhile is in the database
    subscriber_->setCallbacks([this]() { scheduleLoad(0); }, [](std::string_view, bool) {});
    subscriber_->start();
  }
}

void KeyStore::close() {
  loop_.cancelTimer(load_timer_);
  loop_.cancelTimer(uses_timer_);
  load_timer_ = uses_timer_ = 0;
  if (subscriber_) {
    subscriber_->close();
  }
  if (db_) {
    db_->close();
  }
}

void KeyStore::onModuleConnected(uint64_t conn_id) {
  if (loaded_) {
    server_.sendFrame(conn_id, frame_);
  }
}

void KeyStore::onKeyUsed(const uint8_t* payload, size_t len) {
  size_t off = 0;
  sark_tlv_t t;
  while (sark_tlv_next(payload, len, &off, &t) == SARK_PROTO_OK) {
    std::string_view id(reinterpret_cast<const char*>(t.value), t.len);
    if (t.tag == SARK_KEYS_ID && validKeyId(id) && used_.size() < 10000) {
      used_.emplace(id);
      if (!written_.count(std::string(id)) && written_.size() < 100000) {
        written_.emplace(id);
        // a key's first use is written soon, later ones with the minute's
        loop_.cancelTimer(uses_timer_);
        uses_timer_ = loop_.addTimer(kFirstUseFlushMs, [this]() {
          uses_timer_ = 0;
          flushUses();
        });
      }
    }
  }
}

void KeyStore::scheduleLoad(uint64_t delay_ms) {
  if (delay_ms == 0) {
    load_wanted_ = true;
    runPending();
    return;
  }
  if (load_timer_ == 0) {
    load_timer_ = loop_.addTimer(delay_ms, [this]() {
      load_timer_ = 0;
      load_wanted_ = true;
      runPending();
    });
  }
}

// One query at a time on the connection: a load first, then the uses.
void KeyStore::runPending() {
  if (busy_ || !db_ || !db_->ready()) {
    return;
  }
  if (load_wanted_) {
    load();
  }
}

void KeyStore::load() {
  load_wanted_ = false;
  busy_ = true;
  bool sent = db_->query(kLoadSql, {}, cfg_.database_statement_timeout_ms,
                         [this](PgConnection::Outcome& o) { onLoaded(o); });
  if (!sent) {
    busy_ = false;
    scheduleLoad(kRetryMs);
  }
}

void KeyStore::onLoaded(PgConnection::Outcome& o) {
  busy_ = false;
  uint64_t next = cfg_.keys_refresh_ms;
  if (!o.ok || o.results.empty()) {
    uint64_t suppressed = 0;
    if (fail_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "gateway keys not loaded; retrying")
          .str("error", o.error)
          .boolean("have_keys", loaded_)
          .unum("suppressed", suppressed);
    }
    if (!o.conn_lost && db_->transactionStatus() != PQTRANS_IDLE) {
      db_->query("ROLLBACK", {}, cfg_.database_statement_timeout_ms,
                 [](PgConnection::Outcome&) {});
    }
    scheduleLoad(kRetryMs);
    return;
  }

  PGresult* res = o.results.back().get();
  int rows = PQntuples(res);
  if (rows > kMaxKeys) {
    LogLine(LogLevel::Error, "too many gateway keys; serving the first ones")
        .num("limit", kMaxKeys);
    rows = kMaxKeys;
  }

  uint64_t now = monotonicUs() / 1000;
  for (auto it = revoked_.begin(); it != revoked_.end();) {
    it = now - it->second > kRevokedMemoryMs ? revoked_.erase(it) : std::next(it);
  }

  std::map<std::string, Key> fresh;
  for (int i = 0; i < rows; i++) {
    Key k;
    uint64_t expires = 0;
    k.id = PQgetvalue(res, i, 0);
    if (!hexToBytes(PQgetvalue(res, i, 1), k.hash) || !validKeyId(k.id) ||
        !parseScopes(PQgetvalue(res, i, 2), k.scopes) ||
        !parseUint(PQgetvalue(res, i, 3), expires)) {
      LogLine(LogLevel::Warn, "gateway key with invalid fields ignored").str("id", k.id);
      continue;
    }
    k.expires_at = expires;
    if (revoked_.count(k.hash)) {
      continue; // announced revoked: the load may have begun before it
    }
    fresh.emplace(k.hash, std::move(k));
  }

  bool first = !loaded_;
  if (first || fresh != keys_) {
    keys_ = std::move(fresh);
    loaded_ = true;
    publish();
    LogLine(first ? LogLevel::Info : LogLevel::Debug, "gateway keys loaded")
        .unum("keys", keys_.size());
  }
  scheduleLoad(next);
  runPending();
}

void KeyStore::publish() {
  frame_.clear();
  FrameBuilder f(frame_, SARK_MSG_KEYS, 0);
  std::string entry;
  for (const auto& [hash, k] : keys_) {
    entry.assign(hash);
    uint8_t b[12];
    sark_put_u64(b, k.expires_at);
    sark_put_u32(b + 8, k.scopes);
    entry.append(reinterpret_cast<const char*>(b), sizeof(b));
    entry.append(k.id);
    f.str(SARK_KEYS_ENTRY, entry);
  }
  f.finish();
  server_.broadcast(frame_);
}

void KeyStore::flushUses() {
  if (!db_) {
    return;
  }
  uint64_t next = kUsesFlushMs;
  if (!used_.empty() && (busy_ || !db_->ready())) {
    next = kRetryMs; // after the load in flight, or the reconnection
  } else if (!used_.empty()) {
    std::string sql = "UPDATE gateway_keys SET last_used_at = now() WHERE id IN (";
    bool comma = false;
    for (const std::string& id : used_) { // [A-Za-z0-9_-]: safe as literals
      sql += comma ? ",'" : "'";
      sql += id;
      sql += "'";
      comma = true;
    }
    sql += ")";
    used_.clear();
    busy_ = db_->query(sql, {}, cfg_.database_statement_timeout_ms,
                       [this](PgConnection::Outcome& o) {
                         busy_ = false;
                         if (!o.ok) {
                           LogLine(LogLevel::Debug, "gateway key last use not written")
                               .str("error", o.error);
                         }
                         runPending();
                       });
  }
  if (uses_timer_ == 0) {
    uses_timer_ = loop_.addTimer(next, [this]() {
      uses_timer_ = 0;
      flushUses();
    });
  }
}

// sark:keys: "revoke:<hash hex>" or "changed"
void KeyStore::onMessage(const redisReply* r) {
  std::string_view channel;
  std::string_view msg;
  ChannelSeal::Received got = seal_.receive(r, channel, msg);
  if (got == ChannelSeal::Received::Other) {
    return;
  }
  if (got == ChannelSeal::Received::Unsealed) {
    // Not taken at its word, but the database is: a reload, at most once
    // a second (an admin command with another CACHE_L2_HMAC_KEY still
    // revokes within about a second).
    uint64_t now_ms = monotonicUs() / 1000;
    uint64_t suppressed = 0;
    if (bad_message_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "a message not sealed with CACHE_L2_HMAC_KEY: only a reload")
          .str("channel", kKeysChannel)
          .unum("suppressed", suppressed);
    }
    if (now_ms - last_hint_ms_ >= kHintMs) {
      last_hint_ms_ = now_ms;
      scheduleLoad(0);
    }
    return;
  }
  std::string hash;
  // a key's hash and nothing else; remembered for at most kMaxKeys keys
  // (the oldest memory goes first): a writer of Redis cannot grow sarkd
  if (msg.starts_with("revoke:") && msg.size() == 7 + 2 * SARK_KEY_HASH_LEN &&
      hexToBytes(msg.substr(7), hash)) {
    if (revoked_.size() >= static_cast<size_t>(kMaxKeys) && !revoked_.count(hash)) {
      revoked_.erase(std::min_element(revoked_.begin(), revoked_.end(), [](const auto& a,
                                                                          const auto& b) {
        return a.second < b.second;
      }));
    }
    revoked_[hash] = monotonicUs() / 1000;
    if (keys_.erase(hash) > 0) {
      publish();
      LogLine(LogLevel::Info, "gateway key revoked").unum("keys", keys_.size());
    }
  }
  scheduleLoad(0);
}

} // namespace sark
