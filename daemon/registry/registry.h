#pragma once

// The MCP server and tool registry (docs/design.md, Registry): tables
// mcp_servers and mcp_tools, loaded from a JSON file by `sarkd registry
// load FILE` (keys/..-style admin command, registry_admin.h) and editable
// in the database.  sarkd holds the whole registry as one JSON document
// and pushes it to every worker (REGISTRY frame): at connect and whenever
// it changes.  A change is seen through sark_registry_version, a counter
// that triggers bump on every write to the two tables, polled every
// REGISTRY_REFRESH_MS and at once on a "changed" message of Redis channel
// sark:registry.
//
// The document: {"version": N, "servers": [{"name", "url", "description",
// "sensitivity_level", "owner", "teams": [...], "tools": [{"name",
// "description", "sensitivity_level" (null: the server's),
// "parameters": {JSON schema}}]}]}, servers and tools by name.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "audit/pg_connection.h"
#include "cache/channel_seal.h"
#include "cache/redis_connection.h"
#include "core/config.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "proto/module_server.h"

namespace sark {

inline constexpr std::string_view kRegistryChannel = "sark:registry";

// Migration 5 (audit_schema.h's list).
extern const char* const kRegistrySql;

class RegistryStore {
public:
  RegistryStore(EventLoop& loop, const Config& cfg, ModuleServer& server);
  ~RegistryStore();
  RegistryStore(const RegistryStore&) = delete;
  RegistryStore& operator=(const RegistryStore&) = delete;

  void start();
  void close();
  void onModuleConnected(uint64_t conn_id);

  bool loaded() const { return loaded_; }

private:
  void poll();
  void onVersion(PgConnection::Outcome& o);
  void onDocument(PgConnection::Outcome& o);
  void schedule(uint64_t delay_ms);
  void failed(const std::string& error);

  EventLoop& loop_;
  const Config& cfg_;
  ModuleServer& server_;
  std::unique_ptr<PgConnection> db_;
  std::unique_ptr<RedisConnection> subscriber_;
  ChannelSeal seal_;
  uint64_t last_hint_ms_{0};
  std::string frame_;
  bool loaded_{false};
  bool busy_{false};
  bool again_{false};
  int64_t version_{-1};
  EventLoop::TimerId timer_{0};
  LogRateLimiter fail_log_{60 * 1000000};
};

} // namespace sark
