#include "core/sarkd.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/sd_notify.h"
#include "proto/cache_frames.h"
#include "proto/frame_builder.h"

namespace sark {
namespace {

// Time allowed for a drain beyond the OPA timeout (queued requests, slow
// readers); after it, whatever is left is answered "shutting down".
constexpr uint64_t kDrainGraceMs = 5000;
// Invalidation patterns remembered (docs/design.md, Decision cache).
constexpr size_t kRecentInvalidations = 256;

} // namespace

Sarkd::Sarkd(Config& cfg, const char* env_file)
    : cfg_(cfg), env_file_(env_file), opa_(loop_, cfg), revision_(loop_, opa_, cfg.opa_revision_poll_ms),
      server_(loop_, cfg),
      recent_(cfg.maxCacheTtlMs() + SARK_INVALIDATION_SKEW_MS, kRecentInvalidations, SARK_INVALIDATION_SKEW_MS),
      redis_(loop_, cfg), l2_(cfg, redis_, recent_, revision_),
      invalidator_(loop_, cfg, redis_, server_, recent_, l2_),
      authorizer_(cfg, opa_, revision_, server_, l2_, recent_), spool_(cfg.audit_spool_dir),
      store_(loop_, cfg), audit_(loop_, cfg, store_, spool_), keys_(loop_, cfg, server_),
      registry_(loop_, cfg, server_), queries_(loop_, cfg) {}

bool Sarkd::setupSignals(std::string& err) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGUSR1);
  // main() blocked these before any thread existed.
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    err = std::string("signalfd: ") + strerror(errno);
    return false;
  }
  if (!loop_.addFd(signal_fd_.get(), EPOLLIN, [this](uint32_t) { onSignalReadable(); })) {
    err = "cannot watch the signalfd";
    return false;
  }
  return true;
}

void Sarkd::onSignalReadable() {
  struct signalfd_siginfo info;
  while (true) {
    ssize_t n = read(signal_fd_.get(), &info, sizeof(info));
    if (n != static_cast<ssize_t>(sizeof(info))) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      return;
    }
    if (info.ssi_signo == SIGUSR1) {
      LogLine(LogLevel::Info, "status").json("status", statusJson());
      continue;
    }
    if (info.ssi_signo == SIGHUP) {
      reloadSettings();
      continue;
    }
    const char* name = info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (!draining_) {
      beginDrain(name);
      continue;
    }
    LogLine(LogLevel::Warn, "second signal, exiting now")
        .str("signal", name)
        .unum("pending", authorizer_.pending());
    server_.removeSocketFile();
    _exit(1);
  }
}

// SIGHUP: the settings are read again as at start (environment, then the
// env file).  LOG_LEVEL and ENABLE_PROFILING take effect at once; any
// other change is named as needing a restart; a bad value changes
// nothing.  Logs go to stderr, which the supervisor owns (journald, or a
// file it opened): there is no file of sarkd's own to reopen.
void Sarkd::reloadSettings() {
  Config fresh;
  std::string err;
  std::vector<std::string> notes;
  if (!loadConfig(env_file_, fresh, err, notes)) {
    LogLine(LogLevel::Warn, "settings not reloaded").str("error", err);
    return;
  }
  std::string restart;
  for (const auto& [name, value] : fresh.effective) {
    if (name == "LOG_LEVEL" || name == "ENABLE_PROFILING") {
      continue;
    }
    for (const auto& [old_name, old_value] : cfg_.effective) {
      if (old_name == name && old_value != value) {
        restart += restart.empty() ? name : "," + name;
      }
    }
  }
  cfg_.log_level = fresh.log_level;
  cfg_.enable_profiling = fresh.enable_profiling;
  setLogLevel(cfg_.log_level);
  LogLine(LogLevel::Info, "settings reloaded")
      .str("log_level", logLevelName(cfg_.log_level))
      .boolean("enable_profiling", cfg_.enable_profiling)
      .str("need_restart", restart);
}

void Sarkd::beginDrain(const char* signal_name) {
  draining_ = true;
  sdNotify("STOPPING=1");
  LogLine(LogLevel::Info, "draining")
      .str("signal", signal_name)
      .unum("pending", authorizer_.pending())
      .unum("connections", server_.connectionCount());
  server_.startDrain();
  revision_.stop();
  audit_.beginDrain();
  uint64_t limit_ms = std::max<uint64_t>(cfg_.opa_timeout_ms, cfg_.database_statement_timeout_ms);
  drain_timer_ = loop_.addTimer(limit_ms + kDrainGraceMs, [this]() {
    drain_timer_ = 0;
    LogLine(LogLevel::Warn, "drain timed out")
        .unum("pending", authorizer_.pending())
        .unum("audit_events_in_memory", audit_.queuedEvents());
    loop_.stop();
  });
}

void Sarkd::checkDrained() {
  if (authorizer_.pending() == 0 && invalidator_.pending() == 0 && audit_.drained() &&
      server_.flushed()) {
    loop_.stop();
  }
}

void Sarkd::logStartup() {
  LogLine line(LogLevel::Info, "sarkd started");
  line.num("pid", getpid());
  line.str("host_id", invalidator_.hostId());
  for (const auto& [name, value] : cfg_.effective) {
    line.str(name, value);
  }
}

int Sarkd::run() {
  std::string err;
  started_us_ = monotonicUs();
  if (!loop_.init(err) || !opa_.init(err) || !setupSignals(err)) {
    LogLine(LogLevel::Error, "cannot start").str("error", err);
    return 1;
  }
  server_.setAuthzHandler([this](uint64_t conn_id, uint32_t req_id, const uint8_t* payload,
                                 size_t len, std::string& e) {
    if (draining_) {
      // answered at once: the worker says 503 now, not after its timeout
      server_.sendAuthzResponse(conn_id, req_id,
                                Decision::outage("GW-503", "sarkd shutting down", 1),
                                AnswerMeta{});
      return true;
    }
    return authorizer_.onAuthzRequest(conn_id, req_id, payload, len, e);
  });
  server_.setInvalidateHandler([this](uint64_t conn_id, uint32_t frame_id,
                                      const uint8_t* payload, size_t len, std::string& e) {
    return invalidator_.onInvalidateRequest(conn_id, frame_id, payload, len, e);
  });
  server_.setAckHandler(
      [this](uint64_t conn_id, uint32_t id) { invalidator_.onAck(conn_id, id); });
  server_.setConnectHandler([this](uint64_t conn_id) { onModuleConnected(conn_id); });
  server_.setStatusHandler([this]() { return statusJson(); });
  server_.setAuditQueryHandler([this](uint64_t conn_id, uint32_t id, const uint8_t* payload,
                                      size_t len, std::string& e) {
    AuditQuery q;
    if (!decodeAuditQuery(payload, len, q, e)) {
      return false;
    }
    auto answer = [this, conn_id, id](uint8_t status, const std::string& text) {
      std::string frame;
      FrameBuilder f(frame, SARK_MSG_AUDIT_QUERY_RESP, id);
      f.u8(SARK_AQ_STATUS, status);
      f.str(status == SARK_AQ_OK ? SARK_AQ_JSON : SARK_AQ_MESSAGE, text);
      f.finish();
      server_.sendFrame(conn_id, frame);
    };
    if (draining_) {
      answer(SARK_AQ_DOWN, "sarkd is shutting down");
      return true;
    }
    queries_.query(q, answer);
    return true;
  });
  server_.setKeyUsedHandler(
      [this](const uint8_t* payload, size_t len) { keys_.onKeyUsed(payload, len); });
  server_.setAuditHandler([this](uint64_t conn_id, uint32_t id, uint16_t flags,
                                 const uint8_t* payload, size_t len) {
    if (draining_) {
      // not taken, not acknowledged: the worker keeps the batch and sends
      // it to the next sarkd once this connection is gone
      return;
    }
    audit_.onBatch(conn_id, id, flags, payload, len);
  });
  audit_.setAckFn([this](uint64_t conn_id, uint32_t id, uint8_t status, uint32_t events,
                         std::string_view message) {
    std::string frame;
    encodeAuditAck(frame, id, status, events, message);
    server_.sendFrame(conn_id, frame);
  });
  revision_.setChangeListener([this](const std::string& revision) {
    std::string frame;
    encodeRevision(frame, revision);
    server_.broadcast(frame);
  });
  if (!audit_.start(err) || !server_.start(err)) {
    LogLine(LogLevel::Error, "cannot start").str("error", err);
    return 1;
  }
  loop_.addBeforeSleep([this]() {
    if (draining_) {
      checkDrained();
    } else if (!ready_sent_ && revision_.settled()) {
      // listening, and OPA has answered: systemd may start nginx now
      ready_sent_ = true;
      bool told = sdNotify("READY=1");
      LogLine(LogLevel::Info, "ready").boolean("systemd_notified", told);
    }
  });
  logStartup();
  revision_.start();
  if (cfg_.cache_l2_enabled) {
    redis_.start();
  }
  invalidator_.start();
  keys_.start();
  registry_.start();
  queries_.start();

  loop_.run();

  loop_.cancelTimer(drain_timer_);
  revision_.stop();
  // Only a drain timeout leaves calls behind; they are answered now.
  opa_.abortAll();
  invalidator_.close();
  keys_.close();
  registry_.close();
  queries_.close();
  redis_.close();
  // Anything still in memory (a drain timeout) is spooled and acknowledged
  // before the module connections close.
  audit_.close();
  server_.closeAll();
  server_.removeSocketFile();
  const Authorizer::Stats& a = authorizer_.stats();
  const L2Cache::Stats& l2 = l2_.stats();
  LogLine(LogLevel::Info, "stopped")
      .unum("requests", a.requests)
      .unum("coalesced", a.coalesced)
      .unum("evaluations", a.evaluations)
      .unum("l2_hits", a.l2_hits)
      .unum("l2_misses", a.l2_misses)
      .unum("l2_stale", l2.stale)
      .unum("l2_errors", l2.errors)
      .unum("l2_stores", l2.stores)
      .unum("l2_unauthenticated", l2.unauthenticated)
      .unum("answers_cacheable", a.cacheable)
      .unum("peers_refused", server_.peersRefused());
  const AuditWriter::Stats& au = audit_.stats();
  LogLine(LogLevel::Info, "audit totals")
      .unum("received", au.received)
      .unum("written", au.written)
      .unum("spooled", au.spooled)
      .unum("replayed", au.replayed)
      .unum("rejected_batches", au.rejected)
      .unum("invalid", au.invalid)
      .unum("refused", au.refused)
      .unum("unacknowledged", au.lost)
      .unum("spool_pending", spool_.pendingEvents());
  return 0;
}

void Sarkd::onModuleConnected(uint64_t conn_id) {
  // "" too: the worker must not key its L1 while OPA reports no revision
  if (revision_.settled()) {
    std::string frame;
    encodeRevision(frame, revision_.current());
    server_.sendFrame(conn_id, frame);
  }
  invalidator_.onModuleConnected(conn_id);
  keys_.onModuleConnected(conn_id);
  registry_.onModuleConnected(conn_id);
}

} // namespace sark
