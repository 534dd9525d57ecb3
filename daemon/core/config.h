#pragma once

// sarkd settings.  They come from one declarative table (config.cc):
// defaults, overridden by an env file (NAME=value lines), overridden by
// the real environment.  Every value is validated at start-up.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "authz/sensitivity.h"
#include "core/log.h"

namespace sark {

// Where Redis/Valkey is, from VALKEY_URL or the REDIS_* settings.
struct RedisEndpoint {
  std::string host{"127.0.0.1"};
  uint16_t port{6379};
  std::string username; // empty = default user (AUTH <password>)
  std::string password; // empty = no AUTH
  uint32_t db{0};

  // redis://[user:***@]host:port/db, for logs.
  std::string display() const;
};

// Parses redis://[[user]:password@]host[:port][/db] (also valkey://;
// user and password may be %-encoded; an IPv6 host is written [addr]).
bool parseRedisUrl(std::string_view url, RedisEndpoint& out, std::string& why);

struct Config {
  std::string socket_path;
  uint32_t socket_mode{0660};
  bool socket_group_set{false}; // SARKD_SOCKET_GROUP given: chgrp after bind
  gid_t socket_group{0};
  // Peers accepted besides uid 0 and sarkd's own uid (peer_check.h).
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
  uint32_t max_connections{256};
  uint32_t max_inflight{4096};

  std::vector<std::string> opa_urls; // base URLs, no trailing '/'
  uint32_t opa_timeout_ms{1000};
  bool opa_fail_closed{true};
  uint32_t opa_max_connections{64};
  uint32_t opa_revision_poll_ms{1000};

  uint32_t cache_ttl[kSensitivityCount]{300, 180, 60, 30}; // by Sensitivity
  uint32_t cache_negative_ttl{5};             // seconds; 0 = denials not cached
  uint32_t cache_invalidate_timeout_ms{1000}; // wait for other hosts' acks

  bool cache_l2_enabled{true};
  // Key of the HMAC every L2 value carries (l2_seal.h): CACHE_L2_HMAC_KEY,
  // or the content of CACHE_L2_HMAC_KEY_FILE.  Required with L2 on.
  std::string cache_l2_hmac_key;
  std::string cache_l2_hmac_key_file;
  RedisEndpoint redis;
  uint32_t redis_pool_size{2};    // command connections (+1 subscriber)
  uint32_t redis_timeout_ms{100}; // per command (VALKEY_SOCKET_TIMEOUT)
  uint32_t redis_cb_threshold{5};
  uint32_t redis_cb_open_ms{5000};
  uint32_t redis_cb_half_open{1};

  // REDIS_* as given (used when VALKEY_URL is not set; see config.cc).
  std::string redis_host_setting;
  std::string redis_port_setting;
  std::string redis_password_setting;
  std::string redis_db_setting;

  // Audit (docs/design.md, Audit trail).  An empty database_url turns the
  // audit store off: events are then only spooled (never dropped) until one
  // is configured.
  std::string database_url;          // libpq conninfo or postgresql:// URL
  // Audit queries read from here (a replica); empty: database_url.
  std::string database_read_url;
  uint32_t database_pool_size{2};    // writer connections
  uint32_t database_statement_timeout_ms{5000};
  uint32_t database_cb_threshold{3};
  uint32_t database_cb_open_ms{5000};
  uint32_t database_cb_half_open{1};
  uint32_t audit_batch_size{5000};   // events per COPY
  uint32_t audit_flush_interval_ms{1000};
  uint32_t audit_queue_max{200000};  // events held in memory before the spool
  std::string audit_spool_dir{"run/spool"};
  uint32_t audit_summary_refresh_ms{60000}; // gateway_audit_hourly; 0 = never

  // Gateway keys (keys/key_store.h): reloaded this often besides on the
  // sark:keys messages.
  uint32_t keys_refresh_ms{30000};
  // The MCP registry (registry/registry.h): its version is polled this
  // often besides on the sark:registry messages.
  uint32_t registry_refresh_ms{1000};

  LogLevel log_level{LogLevel::Info};
  bool enable_profiling{false};

  // Effective settings as (name, value) for the start-up log; URLs have
  // any user:password@ part removed.
  std::vector<std::pair<std::string, std::string>> effective;

  uint32_t ttlFor(Sensitivity s) const { return cache_ttl[static_cast<size_t>(s)]; }
  // Longest any cached decision can live, in ms.
  uint64_t maxCacheTtlMs() const;
};

// Fills `out`.  `env_file` may be null.  On failure returns false and sets
// `err` to a message naming the offending variable (or file line).
// `notes` receives non-fatal remarks (e.g. unknown names in the file).
bool loadConfig(const char* env_file, Config& out, std::string& err,
                std::vector<std::string>& notes);

// Removes "user:password@" from each URL of a comma list, for logs.
std::string redactUrl(const std::string& urls);

// A decimal number of at most 19 digits, nothing else (no sign, blanks).
inline bool parseUint(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 19) {
    return false;
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

} // namespace sark
