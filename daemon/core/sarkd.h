#pragma once

// sarkd's lifecycle: owns the event loop and its clients, starts them,
// logs its status on SIGUSR1, reloads the settings that can change on
// SIGHUP, and turns SIGTERM/SIGINT into a drain (stop accepting; answer new decisions
// at once with GW-503 and leave new audit batches with the workers, which
// send them to the next sarkd; finish in-flight OPA calls and
// invalidations, write or spool every audit event received, replay the
// spool while the database takes it, flush answers) and stops.  A second signal exits at
// once with status 1.

#include <string>

#include "audit/audit_query.h"
#include "audit/audit_spool.h"
#include "audit/audit_store.h"
#include "audit/audit_writer.h"
#include "authz/authorizer.h"
#include "authz/opa_client.h"
#include "authz/policy_revision.h"
#include "cache/invalidator.h"
#include "cache/l2_cache.h"
#include "cache/recent_invalidations.h"
#include "cache/redis_client.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/handles.h"
#include "keys/key_store.h"
#include "registry/registry.h"
#include "proto/module_server.h"

namespace sark {

class Sarkd {
public:
  // `cfg` is shared by every part; SIGHUP changes the settings that can
  // change safely in it (LOG_LEVEL, ENABLE_PROFILING), read again from
  // the environment and `env_file`.
  Sarkd(Config& cfg, const char* env_file);
  Sarkd(const Sarkd&) = delete;
  Sarkd& operator=(const Sarkd&) = delete;

  // Runs until stopped; returns the process exit status.
  int run();

private:
  bool setupSignals(std::string& err);
  void onSignalReadable();
  void beginDrain(const char* signal_name);
  void reloadSettings();
  void checkDrained();
  void logStartup();
  void onModuleConnected(uint64_t conn_id);
  // STATUS_RESP's JSON (status.cc)
  std::string statusJson() const;

  // Declaration order is destruction order in reverse: the loop outlives
  // every client registered on it.
  Config& cfg_;
  const char* env_file_;
  EventLoop loop_;
  OpaClient opa_;
  PolicyRevision revision_;
  ModuleServer server_;
  RecentInvalidations recent_;
  RedisClient redis_;
  L2Cache l2_;
  Invalidator invalidator_;
  Authorizer authorizer_;
  AuditSpool spool_;
  AuditStore store_;
  AuditWriter audit_;
  KeyStore keys_;
  RegistryStore registry_;
  AuditQueries queries_;
  UniqueFd signal_fd_;
  bool draining_{false};
  EventLoop::TimerId drain_timer_{0};
  uint64_t started_us_{0};
  bool ready_sent_{false};
};

} // namespace sark
