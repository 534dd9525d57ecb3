#include "config.h"

#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <type_traits>

#include <strings.h>

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

bool parseUint(std::string_view text, uint64_t& out) {
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
    {"SARKD_MAX_CONNECTIONS", "256", &setUint<&Config::max_connections, 1, 65535>},
    {"SARKD_MAX_INFLIGHT", "4096", &setUint<&Config::max_inflight, 1, 1000000>},

    {"OPA_URL", "http://127.0.0.1:8181", &setOpaUrl},
    {"OPA_TIMEOUT_MS", "1000", &setUint<&Config::opa_timeout_ms, 1, 600000>},
    {"OPA_FAIL_CLOSED", "true", &setBool<&Config::opa_fail_closed>},
    {"OPA_MAX_CONNECTIONS", "64", &setUint<&Config::opa_max_connections, 1, 10000>},
    {"OPA_REVISION_POLL_MS", "1000", &setUint<&Config::opa_revision_poll_ms, 50, 3600000>},

    {"GATEWAY_CACHE_TTL_LOW", "300", &setTtl<Sensitivity::Low>},
    {"GATEWAY_CACHE_TTL_MEDIUM", "180", &setTtl<Sensitivity::Medium>},
    {"GATEWAY_CACHE_TTL_HIGH", "60", &setTtl<Sensitivity::High>},
    {"GATEWAY_CACHE_TTL_CRITICAL", "30", &setTtl<Sensitivity::Critical>},

    {"LOG_LEVEL", "info", &setLogLevelValue},
    {"ENABLE_PROFILING", "false", &setBool<&Config::enable_profiling>},
};

// Names the design reserves for later parts of sarkd (cache, audit,
// circuit breakers).  They may already sit in conf/sarkd.env; they are
// accepted without a remark.
const char* const kReservedPrefixes[] = {
    "VALKEY_", "REDIS_", "DATABASE_", "AUDIT_", "CACHE_",
};

bool isReserved(const std::string& name) {
  if (name.find("_CIRCUIT_BREAKER_") != std::string::npos) {
    return true;
  }
  for (const char* prefix : kReservedPrefixes) {
    if (name.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

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

} // namespace

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
  for (const Setting& s : kSettings) {
    std::string value = s.default_value;
    if (const char* env = getenv(s.name); env != nullptr) {
      value = env;
    } else if (auto it = file_values.find(s.name); it != file_values.end()) {
      value = it->second;
    }
    std::string why;
    bool is_url = std::string_view(s.name) == "OPA_URL";
    if (!s.apply(value, cfg, why)) {
      err = std::string("invalid ") + s.name + "=\"" + (is_url ? redactUrl(value) : value) +
            "\": " + why;
      return false;
    }
    cfg.effective.emplace_back(s.name, is_url ? redactUrl(value) : value);
  }

  for (const auto& [name, value] : file_values) {
    bool known = false;
    for (const Setting& s : kSettings) {
      if (name == s.name) {
        known = true;
        break;
      }
    }
    if (!known && !isReserved(name)) {
      notes.push_back(std::string(env_file) + ": " + name + " is not a sarkd setting (ignored)");
    }
  }

  out = std::move(cfg);
  return true;
}

} // namespace sark
