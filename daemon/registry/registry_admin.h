#pragma once

// `sarkd registry load FILE` and `sarkd registry show`: the operator's
// commands for the MCP registry (registry.h).  `load` replaces the whole
// registry with the file's (JSON: {"servers": [{"name", "url",
// "description", "sensitivity_level", "owner", "teams", "tools": [{"name",
// "description", "sensitivity_level", "parameters"}]}]}) in one
// transaction, then announces it on sark:registry; `show` prints the
// registry as sarkd serves it.

#include "core/config.h"

namespace sark {

// argv[0] is "registry".  Returns the process exit status.
int runRegistryCommand(const Config& cfg, int argc, char** argv);

} // namespace sark
