#pragma once

// `sarkd keys create|list|revoke`: the operator's commands for gateway
// keys (keys/gateway_keys.h).  They run once and exit, so they may block:
// libpq's synchronous calls on DATABASE_URL (the schema migrations are
// applied first, as at daemon start) and a synchronous PUBLISH on Redis
// so every sarkd learns of the change at once.  Without Redis the
// daemons see it within KEYS_REFRESH_MS.

#include "core/config.h"

namespace sark {

// argv[0] is "keys".  Returns the process exit status.
int runKeysCommand(const Config& cfg, int argc, char** argv);

} // namespace sark
