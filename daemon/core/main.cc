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
#include "keys/key_admin.h"
#include "registry/registry_admin.h"

namespace {

constexpr int kExitUsage = 2;

void usage(FILE* out) {
  fprintf(out,
          "usage: sarkd [--env-file FILE]\n"
          "       sarkd [--env-file FILE] keys create|list|revoke ...\n"
          "       sarkd [--env-file FILE] registry load FILE | show\n"
          "Settings come from the environment; FILE (NAME=value lines) supplies\n"
          "values the environment does not set.  `keys` manages gateway API\n"
          "keys, `registry` the MCP server and tool registry.\n");
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
  int command = 0; // argv index of a command ("keys"), 0 = run the daemon
  for (int i = 1; i < argc && command == 0; i++) {
    if (strcmp(argv[i], "keys") == 0 || strcmp(argv[i], "registry") == 0) {
      command = i;
    } else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
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
  if (command) {
    return strcmp(argv[command], "keys") == 0
               ? sark::runKeysCommand(cfg, argc - command, argv + command)
               : sark::runRegistryCommand(cfg, argc - command, argv + command);
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
