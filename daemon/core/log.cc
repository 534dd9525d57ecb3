#include "core/log.h"

#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace sark {
namespace {

LogLevel g_level = LogLevel::Info;

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t need;
  uint32_t min;
  uint32_t cp;
  if (b0 < 0x80) {
    return 1;
  } else if ((b0 & 0xe0) == 0xc0) {
    need = 1;
    min = 0x80;
    cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    need = 2;
    min = 0x800;
    cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    need = 3;
    min = 0x10000;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i <= need) {
    return 0;
  }
  for (size_t k = 1; k <= need; k++) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return need + 1;
}

void appendTimestamp(std::string& out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[96];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(ts.tv_nsec / 1000000));
  out.append(buf);
}

} // namespace

void setLogLevel(LogLevel level) { g_level = level; }

bool logEnabled(LogLevel level) { return level >= g_level; }

const char* logLevelName(LogLevel level) {
  switch (level) {
  case LogLevel::Debug:
    return "debug";
  case LogLevel::Info:
    return "info";
  case LogLevel::Warn:
    return "warn";
  case LogLevel::Error:
    return "error";
  }
  return "info";
}

bool parseLogLevel(std::string_view text, LogLevel& out) {
  static constexpr LogLevel kAll[] = {LogLevel::Debug, LogLevel::Info, LogLevel::Warn,
                                      LogLevel::Error};
  for (LogLevel level : kAll) {
    std::string_view name = logLevelName(level);
    if (text.size() == name.size() && strncasecmp(text.data(), name.data(), name.size()) == 0) {
      out = level;
      return true;
    }
  }
  return false;
}

void appendJsonEscaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8SequenceLength(s, i);
      if (n == 0) {
        out.append("\\ufffd");
        i++;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
    case '"':
      out.append("\\\"");
      break;
    case '\\':
      out.append("\\\\");
      break;
    case '\n':
      out.append("\\n");
      break;
    case '\r':
      out.append("\\r");
      break;
    case '\t':
      out.append("\\t");
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    i++;
  }
}

LogLine::LogLine(LogLevel level, std::string_view msg) : enabled_(logEnabled(level)) {
  if (!enabled_) {
    return;
  }
  line_.reserve(256);
  line_.append("{\"ts\":\"");
  appendTimestamp(line_);
  line_.append("\",\"level\":\"");
  line_.append(logLevelName(level));
  line_.append("\",\"msg\":\"");
  appendJsonEscaped(line_, msg);
  line_.push_back('"');
}

LogLine::~LogLine() {
  if (!enabled_) {
    return;
  }
  line_.append("}\n");
  // One write per line so lines from concurrent writers do not interleave.
  // A log that cannot be written is dropped; it must not stop the daemon.
  size_t off = 0;
  while (off < line_.size()) {
    ssize_t n = ::write(STDERR_FILENO, line_.data() + off, line_.size() - off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    off += static_cast<size_t>(n);
  }
}

void LogLine::key(std::string_view key) {
  line_.append(",\"");
  appendJsonEscaped(line_, key);
  line_.append("\":");
}

LogLine& LogLine::str(std::string_view k, std::string_view value) {
  if (enabled_) {
    key(k);
    line_.push_back('"');
    appendJsonEscaped(line_, value);
    line_.push_back('"');
  }
  return *this;
}

LogLine& LogLine::num(std::string_view k, int64_t value) {
  if (enabled_) {
    key(k);
    line_.append(std::to_string(value));
  }
  return *this;
}

LogLine& LogLine::unum(std::string_view k, uint64_t value) {
  if (enabled_) {
    key(k);
    line_.append(std::to_string(value));
  }
  return *this;
}

LogLine& LogLine::boolean(std::string_view k, bool value) {
  if (enabled_) {
    key(k);
    line_.append(value ? "true" : "false");
  }
  return *this;
}

LogLine& LogLine::json(std::string_view k, std::string_view json) {
  if (enabled_) {
    key(k);
    line_.append(json);
  }
  return *this;
}

bool LogRateLimiter::allow(uint64_t now_us, uint64_t& suppressed) {
  if (seen_ && now_us - last_us_ < interval_us_) {
    dropped_++;
    return false;
  }
  seen_ = true;
  last_us_ = now_us;
  suppressed = dropped_;
  dropped_ = 0;
  return true;
}

} // namespace sark
