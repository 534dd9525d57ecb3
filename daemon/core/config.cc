#include "core/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <memory>
#include <string_view>
#include <type_traits>

#include <strings.h>

#include "core/handles.h"
#include "proto/peer_check.h"

namespace sark {
namespace {

using ApplyFn = bool (*)(std::string_view value, Config& cfg, std::string& why);

// One row per setting: the name users set, its default (as text, exactly
// what they would write), and the function that validates and stores it.
struct Setting {
  const char* name;
  const char* default_value;
  ApplyFn apply;
};

template <auto Member, uint64_t Min, uint64_t Max>
bool setUint(std::string_view value, Config& cfg, std::string& why) {
  uint64_t v;
  if (!parseUint(value, v) || v < Min || v > Max) {
    why = "must be an integer between " + std::to_string(Min) + " and " + std::to_string(Max);
    return false;
  }
  cfg.*Member = static_cast<std::remove_reference_t<decltype(cfg.*Member)>>(v);
  return true;
}

bool parseBool(std::string_view text, bool& out) {
  static constexpr std::pair<const char*, bool> kWords[] = {
      {"true", true}, {"1", true}, {"yes", true}, {"false", false}, {"0", false}, {"no", false}};
  for (const auto& [word, v] : kWords) {
    if (text.size() == strlen(word) && strncasecmp(text.data(), word, text.size()) == 0) {
      out = v;
      return true;
    }
  }
  return false;
}

template <auto Member> bool setBool(std::string_view value, Config& cfg, std::string& why) {
  if (!parseBool(value, cfg.*Member)) {
    why = "must be one of true, false, 1, 0, yes, no";
    return false;
  }
  return true;
}

template <Sensitivity S> bool setTtl(std::string_view value, Config& cfg, std::string& why) {
  uint64_t v;
  if (!parseUint(value, v) || v > 86400) {
    why = "must be a number of seconds between 0 and 86400";
    return false;
  }
  cfg.cache_ttl[static_cast<size_t>(S)] = static_cast<uint32_t>(v);
  return true;
}

bool setSocketPath(std::string_view value, Config& cfg, std::string& why) {
  if (value.empty() || value.size() >= sizeof(sockaddr_un::sun_path)) {
    why = "must be a path of 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
          " bytes";
    return false;
  }
  if (value.find('\0') != std::string_view::npos) {
    why = "must not contain NUL";
    return false;
  }
  cfg.socket_path.assign(value);
  return true;
}

bool setSocketMode(std::string_view value, Config& cfg, std::string& why) {
  uint32_t v = 0;
  bool ok = !value.empty() && value.size() <= 4;
  for (char c : value) {
    if (c < '0' || c > '7') {
      ok = false;
      break;
    }
    v = v * 8 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || v > 0777) {
    why = "must be an octal file mode such as 0660";
    return false;
  }
  cfg.socket_mode = v;
  return true;
}

bool setSocketGroup(std::string_view value, Config& cfg, std::string& why) {
  cfg.socket_group_set = !value.empty();
  cfg.socket_group = 0;
  return value.empty() || resolveGroup(value, cfg.socket_group, why);
}

bool setAllowedUids(std::string_view value, Config& cfg, std::string& why) {
  return resolveUserList(value, cfg.allowed_uids, why);
}

bool setAllowedGids(std::string_view value, Config& cfg, std::string& why) {
  return resolveGroupList(value, cfg.allowed_gids, why);
}

// The L2 HMAC key: used as is, like the module's JWT secret.
constexpr size_t kMinHmacKeyBytes = 32;
constexpr size_t kMaxHmacKeyBytes = 4096;

bool checkHmacKeyLength(size_t n, std::string& why) {
  if (n < kMinHmacKeyBytes || n > kMaxHmacKeyBytes) {
    why = "the key must be " + std::to_string(kMinHmacKeyBytes) + " to " +
          std::to_string(kMaxHmacKeyBytes) + " bytes, not " + std::to_string(n);
    return false;
  }
  return true;
}

bool setHmacKey(std::string_view value, Config& cfg, std::string& why) {
  if (!value.empty() && !checkHmacKeyLength(value.size(), why)) {
    return false;
  }
  cfg.cache_l2_hmac_key.assign(value);
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool setOpaUrl(std::string_view value, Config& cfg, std::string& why) {
  std::vector<std::string> urls;
  while (true) {
    size_t comma = value.find(',');
    std::string_view one = trim(value.substr(0, comma));
    while (!one.empty() && one.back() == '/') {
      one.remove_suffix(1);
    }
    bool scheme_ok = one.starts_with("http://") || one.starts_with("https://");
    size_t host_at = one.find("://") + 3;
    if (!scheme_ok || one.size() <= host_at) {
      why = "must be a comma-separated list of http:// or https:// URLs";
      return false;
    }
    for (char c : one) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        why = "URLs must not contain spaces or control characters";
        return false;
      }
    }
    urls.emplace_back(one);
    if (comma == std::string_view::npos) {
      break;
    }
    value.remove_prefix(comma + 1);
  }
  if (urls.size() > 32) {
    why = "at most 32 OPA servers";
    return false;
  }
  cfg.opa_urls = std::move(urls);
  return true;
}

// Seconds, possibly fractional ("0.1"), stored as whole milliseconds
// (rounded up, so a positive value never becomes 0).
template <auto Member, uint64_t MinMs, uint64_t MaxMs>
bool setSecondsMs(std::string_view value, Config& cfg, std::string& why) {
  std::string text(value);
  char* end = nullptr;
  errno = 0;
  double v = text.empty() ? -1 : strtod(text.c_str(), &end);
  bool ok = !text.empty() && errno == 0 && end == text.c_str() + text.size() && v >= 0 &&
            v <= static_cast<double>(MaxMs) / 1000.0 && (text[0] >= '0' && text[0] <= '9');
  uint64_t ms = 0;
  if (ok) {
    double scaled = v * 1000.0;
    ms = static_cast<uint64_t>(scaled);
    if (static_cast<double>(ms) < scaled) {
      ms++;
    }
    ok = ms >= MinMs && ms <= MaxMs;
  }
  if (!ok) {
    why = "must be a number of seconds between " + std::to_string(MinMs / 1000.0).substr(0, 5) +
          " and " + std::to_string(MaxMs / 1000);
    return false;
  }
  cfg.*Member = static_cast<uint32_t>(ms);
  return true;
}

bool setRedisUrl(std::string_view value, Config& cfg, std::string& why) {
  return parseRedisUrl(value, cfg.redis, why);
}

template <auto Member> bool setText(std::string_view value, Config& cfg, std::string&) {
  (cfg.*Member).assign(value);
  return true;
}

bool setSpoolDir(std::string_view value, Config& cfg, std::string& why) {
  if (value.empty()) {
    why = "must name a directory";
    return false;
  }
  cfg.audit_spool_dir.assign(value);
  return true;
}

bool setLogLevelValue(std::string_view value, Config& cfg, std::string& why) {
  if (!parseLogLevel(value, cfg.log_level)) {
    why = "must be one of debug, info, warn, error";
    return false;
  }
  return true;
}

// The settings table.  Keep it alphabetical within each group.
const Setting kSettings[] = {
    {"SARKD_SOCKET", "run/sarkd.sock", &setSocketPath},
    {"SARKD_SOCKET_MODE", "0660", &setSocketMode},
    {"SARKD_SOCKET_GROUP", "", &setSocketGroup},
    {"SARKD_ALLOWED_UIDS", "", &setAllowedUids},
    {"SARKD_ALLOWED_GIDS", "", &setAllowedGids},
    {"SARKD_MAX_CONNECTIONS", "256", &setUint<&Config::max_connections, 1, 65535>},
    {"SARKD_MAX_INFLIGHT", "4096", &setUint<&Config::max_inflight, 1, 1000000>},

    {"OPA_URL", "http://127.0.0.1:8181", &setOpaUrl},
    {"OPA_TIMEOUT_MS", "1000", &setUint<&Config::opa_timeout_ms, 1, 600000>},
    {"OPA_FAIL_CLOSED", "true", &setBool<&Config::opa_fail_closed>},
    {"OPA_MAX_CONNECTIONS", "64", &setUint<&Config::opa_max_connections, 1, 10000>},
    {"OPA_REVISION_POLL_MS", "1000", &setUint<&Config::opa_revision_poll_ms, 50, 3600000>},
    {"KEYS_REFRESH_MS", "30000", &setUint<&Config::keys_refresh_ms, 100, 3600000>},
    {"REGISTRY_REFRESH_MS", "1000", &setUint<&Config::registry_refresh_ms, 100, 3600000>},

    {"GATEWAY_CACHE_TTL_LOW", "300", &setTtl<Sensitivity::Low>},
    {"GATEWAY_CACHE_TTL_MEDIUM", "180", &setTtl<Sensitivity::Medium>},
    {"GATEWAY_CACHE_TTL_HIGH", "60", &setTtl<Sensitivity::High>},
    {"GATEWAY_CACHE_TTL_CRITICAL", "30", &setTtl<Sensitivity::Critical>},
    {"CACHE_NEGATIVE_TTL", "5", &setUint<&Config::cache_negative_ttl, 0, 86400>},
    {"CACHE_INVALIDATE_TIMEOUT_MS", "1000",
     &setUint<&Config::cache_invalidate_timeout_ms, 10, 60000>},

    {"CACHE_L2_ENABLED", "true", &setBool<&Config::cache_l2_enabled>},
    {"CACHE_L2_HMAC_KEY", "", &setHmacKey},
    {"CACHE_L2_HMAC_KEY_FILE", "", &setText<&Config::cache_l2_hmac_key_file>},
    {"VALKEY_URL", "redis://127.0.0.1:6379/0", &setRedisUrl},
    {"REDIS_HOST", "", &setText<&Config::redis_host_setting>},
    {"REDIS_PORT", "", &setText<&Config::redis_port_setting>},
    {"REDIS_PASSWORD", "", &setText<&Config::redis_password_setting>},
    {"REDIS_DB", "", &setText<&Config::redis_db_setting>},
    {"VALKEY_POOL_SIZE", "2", &setUint<&Config::redis_pool_size, 1, 64>},
    {"VALKEY_SOCKET_TIMEOUT", "0.1", &setSecondsMs<&Config::redis_timeout_ms, 1, 60000>},
    {"REDIS_CIRCUIT_BREAKER_THRESHOLD", "5", &setUint<&Config::redis_cb_threshold, 1, 1000000>},
    {"REDIS_CIRCUIT_BREAKER_TIMEOUT", "5",
     &setSecondsMs<&Config::redis_cb_open_ms, 1, 3600000>},
    {"REDIS_CIRCUIT_BREAKER_HALF_OPEN", "1", &setUint<&Config::redis_cb_half_open, 1, 1000>},

    {"DATABASE_URL", "", &setText<&Config::database_url>},
    {"DATABASE_READ_URL", "", &setText<&Config::database_read_url>},
    {"DATABASE_POOL_SIZE", "2", &setUint<&Config::database_pool_size, 1, 64>},
    {"DATABASE_STATEMENT_TIMEOUT", "5000",
     &setUint<&Config::database_statement_timeout_ms, 1, 3600000>},
    {"DATABASE_CIRCUIT_BREAKER_THRESHOLD", "3",
     &setUint<&Config::database_cb_threshold, 1, 1000000>},
    {"DATABASE_CIRCUIT_BREAKER_TIMEOUT", "5",
     &setSecondsMs<&Config::database_cb_open_ms, 1, 3600000>},
    {"DATABASE_CIRCUIT_BREAKER_HALF_OPEN", "1",
     &setUint<&Config::database_cb_half_open, 1, 1000>},
    {"AUDIT_BATCH_SIZE", "5000", &setUint<&Config::audit_batch_size, 1, 100000>},
    {"AUDIT_FLUSH_INTERVAL_SECONDS", "1",
     &setSecondsMs<&Config::audit_flush_interval_ms, 1, 3600000>},
    {"AUDIT_QUEUE_MAX", "200000", &setUint<&Config::audit_queue_max, 1, 100000000>},
    {"AUDIT_SPOOL_DIR", "run/spool", &setSpoolDir},
    {"AUDIT_SUMMARY_REFRESH_SECONDS", "60",
     &setSecondsMs<&Config::audit_summary_refresh_ms, 0, 86400000>},

    {"LOG_LEVEL", "info", &setLogLevelValue},
    {"ENABLE_PROFILING", "false", &setBool<&Config::enable_profiling>},
};

bool validName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Where a value came from; a more specific source wins.
enum Source { kDefault = 0, kFile = 1, kEnvironment = 2 };

// VALKEY_URL, or REDIS_HOST/PORT/PASSWORD/DB when those come from a more
// specific source than VALKEY_URL (e.g. REDIS_HOST in the environment and
// VALKEY_URL only in the env file or not at all).
bool resolveRedisEndpoint(Config& cfg, const std::map<std::string, Source>& sources,
                          std::string& err, std::vector<std::string>& notes) {
  static const char* const kParts[] = {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB"};
  Source url_source = sources.at("VALKEY_URL");
  Source parts_source = kDefault;
  for (const char* name : kParts) {
    parts_source = std::max(parts_source, sources.at(name));
  }
  if (parts_source == kDefault) {
    return true;
  }
  if (url_source >= parts_source) {
    notes.push_back("REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB are ignored: VALKEY_URL is "
                    "set");
    return true;
  }
  RedisEndpoint ep;
  if (!cfg.redis_host_setting.empty()) {
    ep.host = cfg.redis_host_setting;
  }
  uint64_t v;
  if (!cfg.redis_port_setting.empty()) {
    if (!parseUint(cfg.redis_port_setting, v) || v < 1 || v > 65535) {
      err = "invalid REDIS_PORT=\"" + cfg.redis_port_setting +
            "\": must be an integer between 1 and 65535";
      return false;
    }
    ep.port = static_cast<uint16_t>(v);
  }
  if (!cfg.redis_db_setting.empty()) {
    if (!parseUint(cfg.redis_db_setting, v) || v > 1000000) {
      err = "invalid REDIS_DB=\"" + cfg.redis_db_setting +
            "\": must be an integer between 0 and 1000000";
      return false;
    }
    ep.db = static_cast<uint32_t>(v);
  }
  for (char c : ep.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '@') {
      err = "invalid REDIS_HOST=\"" + cfg.redis_host_setting + "\": not a host name or address";
      return false;
    }
  }
  ep.password = cfg.redis_password_setting;
  cfg.redis = std::move(ep);
  return true;
}

// CACHE_L2_HMAC_KEY or the content of CACHE_L2_HMAC_KEY_FILE (trailing
// newlines stripped); one of them is required while L2 is on.
bool resolveHmacKey(Config& cfg, std::string& err, std::vector<std::string>& notes) {
  const std::string& path = cfg.cache_l2_hmac_key_file;
  if (!path.empty()) {
    if (!cfg.cache_l2_hmac_key.empty()) {
      err = "CACHE_L2_HMAC_KEY and CACHE_L2_HMAC_KEY_FILE are both set; set one of them";
      return false;
    }
    const std::string bad = "invalid CACHE_L2_HMAC_KEY_FILE=\"" + path + "\": ";
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    struct stat st;
    if (!fd || fstat(fd.get(), &st) != 0) {
      err = bad + "cannot open it: " + strerror(errno);
      return false;
    }
    if (!S_ISREG(st.st_mode)) {
      err = bad + "not a regular file";
      return false;
    }
    std::string key(kMaxHmacKeyBytes + 2, '\0');
    size_t got = 0;
    while (got < key.size()) {
      ssize_t n = read(fd.get(), key.data() + got, key.size() - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        err = bad + "cannot read it: " + strerror(errno);
        return false;
      }
      if (n == 0) {
        break;
      }
      got += static_cast<size_t>(n);
    }
    // A full buffer: more than a key and its newline.
    const bool too_long = got == key.size();
    key.resize(got);
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
      key.pop_back();
    }
    std::string why;
    if (too_long) {
      why = "the file holds more than " + std::to_string(kMaxHmacKeyBytes) + " bytes";
    }
    if (too_long || !checkHmacKeyLength(key.size(), why)) {
      err = bad + why;
      return false;
    }
    if ((st.st_mode & S_IROTH) != 0) {
      notes.push_back("CACHE_L2_HMAC_KEY_FILE " + path +
                      " is readable by every user; anyone who reads it can forge cached "
                      "decisions (chmod 0640 or 0600)");
    }
    cfg.cache_l2_hmac_key = std::move(key);
  }
  if (cfg.cache_l2_enabled && cfg.cache_l2_hmac_key.empty()) {
    err = "CACHE_L2_HMAC_KEY (or CACHE_L2_HMAC_KEY_FILE) is required when CACHE_L2_ENABLED=true: "
          "every host of one Redis needs the same key of at least 32 bytes";
    return false;
  }
  return true;
}

bool readEnvFile(const char* path, std::map<std::string, std::string>& values, std::string& err) {
  FILE* f = fopen(path, "re");
  if (f == nullptr) {
    err = std::string("cannot open env file ") + path + ": " + strerror(errno);
    return false;
  }
  std::unique_ptr<FILE, int (*)(FILE*)> guard(f, &fclose);
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  unsigned lineno = 0;
  bool ok = true;
  while ((n = getline(&buf, &cap, f)) >= 0) {
    lineno++;
    std::string_view line = trim(std::string_view(buf, static_cast<size_t>(n)));
    if (line.empty() || line.front() == '#') {
      continue;
    }
    if (line.starts_with("export ")) {
      line = trim(line.substr(7));
    }
    size_t eq = line.find('=');
    std::string_view name = eq == std::string_view::npos ? line : trim(line.substr(0, eq));
    if (eq == std::string_view::npos || !validName(name)) {
      err = std::string(path) + ":" + std::to_string(lineno) + ": expected NAME=value";
      ok = false;
      break;
    }
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    values[std::string(name)] = std::string(value);
  }
  free(buf);
  if (ok && ferror(f)) {
    err = std::string("cannot read env file ") + path;
    ok = false;
  }
  return ok;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    int hi = hexValue(in[i + 1]);
    int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

} // namespace

bool parseRedisUrl(std::string_view url, RedisEndpoint& out, std::string& why) {
  why = "must be redis://[:password@]host[:port][/db]";
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("valkey://")) {
    rest = url.substr(9);
  } else {
    if (url.starts_with("rediss://") || url.starts_with("valkeys://")) {
      why = "TLS (rediss://) is not supported; use redis://";
    }
    return false;
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#') {
      why = "must be redis://[:password@]host[:port][/db] without spaces, query or fragment";
      return false;
    }
  }
  RedisEndpoint ep;
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    std::string_view pass =
        colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
    if (colon == std::string_view::npos) {
      // redis://password@host is how some clients write a bare password.
      pass = user;
      user = {};
    }
    if (!percentDecode(user, ep.username) || !percentDecode(pass, ep.password)) {
      why = "bad %-escape in the user or password";
      return false;
    }
    if (!ep.username.empty() && ep.password.empty()) {
      why = "a user needs a password (redis://user:password@host)";
      return false;
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return false;
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) {
    why = "has no host";
    return false;
  }
  ep.host.assign(host);
  uint64_t v;
  if (!port.empty() || authority.ends_with(":")) {
    if (!parseUint(port, v) || v < 1 || v > 65535) {
      why = "port must be an integer between 1 and 65535";
      return false;
    }
    ep.port = static_cast<uint16_t>(v);
  }
  if (!path.empty()) {
    if (!parseUint(path, v) || v > 1000000) {
      why = "database (the /db part) must be an integer";
      return false;
    }
    ep.db = static_cast<uint32_t>(v);
  }
  out = std::move(ep);
  why.clear();
  return true;
}

std::string RedisEndpoint::display() const {
  std::string s = "redis://";
  if (!password.empty()) {
    s += username + ":***@";
  }
  if (host.find(':') != std::string::npos) {
    s += "[" + host + "]";
  } else {
    s += host;
  }
  s += ":" + std::to_string(port) + "/" + std::to_string(db);
  return s;
}

uint64_t Config::maxCacheTtlMs() const {
  uint64_t max_s = cache_negative_ttl;
  for (uint32_t ttl : cache_ttl) {
    max_s = std::max<uint64_t>(max_s, ttl);
  }
  return max_s * 1000;
}

std::string redactUrl(const std::string& urls) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t comma = urls.find(',', pos);
    std::string url = urls.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t scheme = url.find("://");
    if (scheme != std::string::npos) {
      size_t host = scheme + 3;
      size_t end = url.find_first_of("/?#", host);
      size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
      if (at != std::string::npos && at >= host) {
        url = url.substr(0, host) + "***@" + url.substr(at + 1);
      }
    }
    out += url;
    if (comma == std::string::npos) {
      return out;
    }
    out += ',';
    pos = comma + 1;
  }
}

bool loadConfig(const char* env_file, Config& out, std::string& err,
                std::vector<std::string>& notes) {
  std::map<std::string, std::string> file_values;
  if (env_file != nullptr && !readEnvFile(env_file, file_values, err)) {
    return false;
  }

  Config cfg;
  std::map<std::string, Source> sources;
  for (const Setting& s : kSettings) {
    std::string value = s.default_value;
    Source source = kDefault;
    if (const char* env = getenv(s.name); env != nullptr) {
      value = env;
      source = kEnvironment;
    } else if (auto it = file_values.find(s.name); it != file_values.end()) {
      value = it->second;
      source = kFile;
    }
    sources[s.name] = source;
    std::string why;
    std::string_view name(s.name);
    bool database = name == "DATABASE_URL" || name == "DATABASE_READ_URL";
    bool is_url = name == "OPA_URL" || name == "VALKEY_URL" ||
                  (database && value.find("://") != std::string::npos);
    // A key=value conninfo may carry password=...; show none of it.
    bool is_secret = name == "REDIS_PASSWORD" || name == "CACHE_L2_HMAC_KEY" ||
                     (database && !is_url && value.find("password") != std::string::npos);
    std::string shown = is_url ? redactUrl(value) : is_secret && !value.empty() ? "***" : value;
    if (!s.apply(value, cfg, why)) {
      err = std::string("invalid ") + s.name + "=\"" + shown + "\": " + why;
      return false;
    }
    cfg.effective.emplace_back(s.name, shown);
  }
  if (!resolveRedisEndpoint(cfg, sources, err, notes) || !resolveHmacKey(cfg, err, notes)) {
    return false;
  }
  for (auto& [name, value] : cfg.effective) {
    if (name == "VALKEY_URL") {
      value = cfg.redis.display(); // what is actually used
    }
  }

  for (const auto& [name, value] : file_values) {
    bool known = false;
    for (const Setting& s : kSettings) {
      if (name == s.name) {
        known = true;
        break;
      }
    }
    if (known) {
      continue;
    }
    // a misspelt setting would otherwise leave its default in force unseen
    err = std::string(env_file) + ": " + name + " is not a sarkd setting";
    return false;
  }

  out = std::move(cfg);
  return true;
}

} // namespace sark
