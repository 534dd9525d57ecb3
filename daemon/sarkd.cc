#include "sarkd.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "log.h"

namespace sark {
namespace {

// Time allowed for a drain beyond the OPA timeout (queued requests, slow
// readers); after it, whatever is left is answered "shutting down".
constexpr uint64_t kDrainGraceMs = 5000;

} // namespace

Sarkd::Sarkd(const Config& cfg)
    : cfg_(cfg), opa_(loop_, cfg), revision_(loop_, opa_, cfg.opa_revision_poll_ms),
      server_(loop_, cfg), authorizer_(cfg, opa_, revision_, server_) {}

bool Sarkd::setupSignals(std::string& err) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
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

void Sarkd::beginDrain(const char* signal_name) {
  draining_ = true;
  LogLine(LogLevel::Info, "draining")
      .str("signal", signal_name)
      .unum("pending", authorizer_.pending())
      .unum("connections", server_.connectionCount());
  server_.startDrain();
  revision_.stop();
  drain_timer_ = loop_.addTimer(cfg_.opa_timeout_ms + kDrainGraceMs, [this]() {
    drain_timer_ = 0;
    LogLine(LogLevel::Warn, "drain timed out").unum("pending", authorizer_.pending());
    loop_.stop();
  });
}

void Sarkd::checkDrained() {
  if (authorizer_.pending() == 0 && server_.flushed()) {
    loop_.stop();
  }
}

void Sarkd::logStartup() {
  LogLine line(LogLevel::Info, "sarkd started");
  line.num("pid", getpid());
  for (const auto& [name, value] : cfg_.effective) {
    line.str(name, value);
  }
}

int Sarkd::run() {
  std::string err;
  if (!loop_.init(err) || !opa_.init(err) || !setupSignals(err)) {
    LogLine(LogLevel::Error, "cannot start").str("error", err);
    return 1;
  }
  server_.setAuthzHandler([this](uint64_t conn_id, uint32_t req_id, const uint8_t* payload,
                                 size_t len, std::string& e) {
    return authorizer_.onAuthzRequest(conn_id, req_id, payload, len, e);
  });
  if (!server_.start(err)) {
    LogLine(LogLevel::Error, "cannot start").str("error", err);
    return 1;
  }
  loop_.addBeforeSleep([this]() {
    if (draining_) {
      checkDrained();
    }
  });
  logStartup();
  revision_.start();

  loop_.run();

  loop_.cancelTimer(drain_timer_);
  revision_.stop();
  // Only a drain timeout leaves calls behind; they are answered now.
  opa_.abortAll();
  server_.closeAll();
  server_.removeSocketFile();
  LogLine(LogLevel::Info, "stopped");
  return 0;
}

} // namespace sark
