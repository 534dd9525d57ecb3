// sarkd: the sark-gateway sidecar.  Answers authorization requests from
// the nginx module over a Unix socket by asking OPA.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/handles.h"
#include "core/log.h"
#include "core/sarkd.h"

namespace {

constexpr int kExitUsage = 2;

void usage(FILE* out) {
  fprintf(out,
          "usage: sarkd [--env-file FILE]\n"
          "Settings come from the environment; FILE (NAME=value lines) supplies\n"
          "values the environment does not set.\n");
}

} // namespace

int main(int argc, char** argv) {
  // Block the signals sarkd handles before any thread (libcurl's resolver)
  // is created; they are read from a signalfd in the event loop.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const char* env_file = nullptr;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
      env_file = argv[++i];
    } else if (strncmp(argv[i], "--env-file=", 11) == 0) {
      env_file = argv[i] + 11;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "sarkd: unknown argument: %s\n", argv[i]);
      usage(stderr);
      return kExitUsage;
    }
  }

  sark::Config cfg;
  std::string err;
  std::vector<std::string> notes;
  if (!sark::loadConfig(env_file, cfg, err, notes)) {
    sark::LogLine(sark::LogLevel::Error, "invalid configuration").str("error", err);
    return kExitUsage;
  }
  sark::setLogLevel(cfg.log_level);
  for (const std::string& note : notes) {
    sark::LogLine(sark::LogLevel::Warn, "configuration").str("note", note);
  }

  sark::CurlGlobal curl;
  if (!curl.ok()) {
    sark::LogLine(sark::LogLevel::Error, "cannot start").str("error", "curl_global_init failed");
    return 1;
  }

  sark::Sarkd daemon(cfg, env_file);
  return daemon.run();
}
