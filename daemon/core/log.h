#pragma once

// Structured logging: one JSON object per line on stderr,
//   {"ts":"2026-11-26T22:00:00.123Z","level":"info","msg":"...", ...fields}
//
// Usage (the line is written when the temporary is destroyed):
//   LogLine(LogLevel::Info, "policy revision changed").str("revision", rev);

#include <cstdint>
#include <string>
#include <string_view>

namespace sark {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLogLevel(LogLevel level);
bool logEnabled(LogLevel level);
const char* logLevelName(LogLevel level);
// Parses debug|info|warn|error (case-insensitive).
bool parseLogLevel(std::string_view text, LogLevel& out);

// Appends `s` to `out` as JSON string content (no quotes).  Control
// characters are escaped and invalid UTF-8 becomes U+FFFD, so a line is
// always valid JSON whatever the input.
void appendJsonEscaped(std::string& out, std::string_view s);

class LogLine {
public:
  LogLine(LogLevel level, std::string_view msg);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& str(std::string_view key, std::string_view value);
  LogLine& num(std::string_view key, int64_t value);
  LogLine& unum(std::string_view key, uint64_t value);
  LogLine& boolean(std::string_view key, bool value);
  // `json` must be one valid JSON value (the caller made it)
  LogLine& json(std::string_view key, std::string_view json);

private:
  void key(std::string_view key);

  bool enabled_;
  std::string line_;
};

// Lets one line through per interval; counts the ones it held back so the
// next line can report them ("suppressed": n).
class LogRateLimiter {
public:
  explicit LogRateLimiter(uint64_t interval_us) : interval_us_(interval_us) {}

  // True when a line may be written now; `suppressed` is then the number of
  // lines dropped since the previous one.
  bool allow(uint64_t now_us, uint64_t& suppressed);

private:
  uint64_t interval_us_;
  uint64_t last_us_{0};
  bool seen_{false};
  uint64_t dropped_{0};
};

} // namespace sark
