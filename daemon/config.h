#pragma once

// sarkd settings.  They come from one declarative table (config.cc):
// defaults, overridden by an env file (NAME=value lines), overridden by
// the real environment.  Every value is validated at start-up.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "log.h"
#include "sensitivity.h"

namespace sark {

struct Config {
  std::string socket_path;
  uint32_t socket_mode{0660};
  uint32_t max_connections{256};
  uint32_t max_inflight{4096};

  std::vector<std::string> opa_urls; // base URLs, no trailing '/'
  uint32_t opa_timeout_ms{1000};
  bool opa_fail_closed{true};
  uint32_t opa_max_connections{64};
  uint32_t opa_revision_poll_ms{1000};

  uint32_t cache_ttl[kSensitivityCount]{300, 180, 60, 30}; // by Sensitivity

  LogLevel log_level{LogLevel::Info};
  bool enable_profiling{false};

  // Effective settings as (name, value) for the start-up log; URLs have
  // any user:password@ part removed.
  std::vector<std::pair<std::string, std::string>> effective;

  uint32_t ttlFor(Sensitivity s) const { return cache_ttl[static_cast<size_t>(s)]; }
};

// Fills `out`.  `env_file` may be null.  On failure returns false and sets
// `err` to a message naming the offending variable (or file line).
// `notes` receives non-fatal remarks (e.g. unknown names in the file).
bool loadConfig(const char* env_file, Config& out, std::string& err,
                std::vector<std::string>& notes);

// Removes "user:password@" from each URL of a comma list, for logs.
std::string redactUrl(const std::string& urls);

} // namespace sark
