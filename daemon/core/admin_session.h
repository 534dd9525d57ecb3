#pragma once

// What the one-shot operator commands (`sarkd keys ...`, `sarkd registry
// ...`) share.  They run and exit, so they may block: a synchronous libpq
// connection to DATABASE_URL with the schema migrations applied as at
// daemon start, and a synchronous PUBLISH so every running sarkd learns of
// a change at once.

#include <libpq-fe.h>

#include <string>
#include <string_view>

#include "audit/pg_connection.h"
#include "core/config.h"

namespace sark {

// Connected and migrated, or null after a message on stderr naming `what`
// (the command).
PgConnPtr adminConnect(const Config& cfg, const char* what);

// PQexec of `sql`; false with PostgreSQL's message in `err`.
bool adminExec(PGconn* c, const std::string& sql, std::string& err);

// PUBLISH `channel` `message` on the configured Redis; a failure is a
// warning on stderr (the daemons also poll, every `poll_setting`).
void adminAnnounce(const Config& cfg, std::string_view channel, std::string_view message,
                   const char* poll_setting);

} // namespace sark
