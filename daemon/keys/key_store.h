#pragma once

// The gateway keys sarkd serves to its workers (docs/design.md, Gateway
// keys).  Loaded from PostgreSQL (every key not revoked) at start, every
// KEYS_REFRESH_MS, and whenever Redis channel sark:keys announces a
// change; each load that changes the set is pushed to every module
// connection (KEYS), and a new connection gets the current set at once.
// A revocation message removes its key before the reload (so it stops
// working on every host within the message's delivery, even while the
// database is slow), and a load that started before it cannot bring the
// key back.  Without a database there are no keys from it: the set is
// loaded and empty.  Workers report the keys they use (KEY_USED, at most
// once a minute per key and worker); last_used_at is written a second
// after a key's first use since sarkd started, then once a minute.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "audit/pg_connection.h"
#include "cache/channel_seal.h"
#include "cache/redis_connection.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "proto/module_server.h"

namespace sark {

class KeyStore {
public:
  KeyStore(EventLoop& loop, const Config& cfg, ModuleServer& server);
  ~KeyStore();
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  void start();
  void close();

  void onModuleConnected(uint64_t conn_id);
  // KEY_USED from a module.
  void onKeyUsed(const uint8_t* payload, size_t len);

  bool loaded() const { return loaded_; }
  size_t count() const { return keys_.size(); }

private:
  struct Key {
    std::string hash; // 32 bytes
    uint64_t expires_at{0};
    uint32_t scopes{0};
    std::string id;
    bool operator==(const Key&) const = default;
  };

  void load();
  void onLoaded(PgConnection::Outcome& o);
  void flushUses();
  void runPending();
  void onMessage(const redisReply* r);
  void publish();
  void scheduleLoad(uint64_t delay_ms);

  EventLoop& loop_;
  const Config& cfg_;
  ModuleServer& server_;
  std::unique_ptr<PgConnection> db_;
  std::unique_ptr<RedisConnection> subscriber_;
  ChannelSeal seal_;
  LogRateLimiter bad_message_log_{10 * 1000000};
  uint64_t last_hint_ms_{0};

  // by hash
  std::map<std::string, Key> keys_;
  std::string frame_;
  bool loaded_{false};
  // revocations announced (hash -> when, monotonic ms); a load started
  // before one cannot bring its key back
  std::map<std::string, uint64_t> revoked_;
  bool load_wanted_{false};
  bool busy_{false};
  std::set<std::string> used_;
  std::set<std::string> written_; // ids whose use was written once already
  EventLoop::TimerId load_timer_{0};
  EventLoop::TimerId uses_timer_{0};
  LogRateLimiter fail_log_{60 * 1000000};
};

} // namespace sark
