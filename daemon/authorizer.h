#pragma once

// The decision path for one AUTHZ_REQ: decode, build the OPA input, ask
// OPA, map the answer (fail-open where allowed), send the AUTHZ_RESP.
// This is where an L2 cache lookup (before OPA) and the audit enqueue
// (after the answer) slot in.

#include <cstdint>
#include <string>

#include "config.h"
#include "decision.h"
#include "event_loop.h"
#include "log.h"
#include "module_server.h"
#include "opa_client.h"
#include "policy_revision.h"

namespace sark {

class Authorizer {
public:
  Authorizer(const Config& cfg, OpaClient& opa, PolicyRevision& revision, ModuleServer& server);
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // ModuleServer::AuthzHandler.
  bool onAuthzRequest(uint64_t conn_id, uint32_t req_id, const uint8_t* payload, size_t len,
                      std::string& err);

  // Requests accepted and not answered yet.
  size_t pending() const { return pending_; }

private:
  struct Pending {
    uint64_t conn_id;
    uint32_t req_id;
    Sensitivity sensitivity;
    uint64_t received_us;
    std::string request_id;
  };

  void onOpaResult(const Pending& p, const OpaResult& r);
  void answer(const Pending& p, const Decision& d, const OpaResult* r);
  void logOutage(const Decision& d, const OpaResult& r);

  const Config& cfg_;
  OpaClient& opa_;
  PolicyRevision& revision_;
  ModuleServer& server_;
  size_t pending_{0};
  LogRateLimiter outage_log_{1000000};
};

} // namespace sark
