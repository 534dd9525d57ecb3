#include "keys/key_admin.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/admin_session.h"
#include "keys/gateway_keys.h"

namespace sark {
namespace {

constexpr int kExitUsage = 2;

void usage(FILE* out) {
  fprintf(out,
          "usage: sarkd [--env-file FILE] keys create --name NAME [--scopes authorize,audit]\n"
          "                                      [--expires-in DAYS]\n"
          "       sarkd [--env-file FILE] keys list\n"
          "       sarkd [--env-file FILE] keys revoke ID|NAME\n"
          "create prints the new key on stdout, once: only its SHA-256 is kept.\n");
}

void announce(const Config& cfg, const std::string& message) {
  adminAnnounce(cfg, kKeysChannel, message, "KEYS_REFRESH_MS");
}

int create(PGconn* c, const Config& cfg, int argc, char** argv) {
  std::string name, scopes = "authorize,audit", days;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "--name" || a == "--scopes" || a == "--expires-in") && i + 1 < argc) {
      (a == "--name" ? name : a == "--scopes" ? scopes : days) = argv[++i];
    } else {
      fprintf(stderr, "sarkd: keys create: unexpected argument: %s\n", argv[i]);
      usage(stderr);
      return kExitUsage;
    }
  }
  uint32_t bits = 0;
  uint64_t n_days = 0;
  // a name is a column of `keys list`: no tab, newline or other control byte
  bool printable = std::all_of(name.begin(), name.end(), [](char ch) {
    auto u = static_cast<unsigned char>(ch);
    return u >= 0x20 && u != 0x7f;
  });
  if (name.empty() || name.size() > 200 || !printable) {
    fprintf(stderr, "sarkd: keys create: --name NAME (1 to 200 bytes, no control "
                    "characters) is required\n");
    return kExitUsage;
  }
  if (!parseScopes(scopes, bits)) {
    fprintf(stderr, "sarkd: keys create: --scopes takes authorize and/or audit, comma-separated\n");
    return kExitUsage;
  }
  if (!days.empty() && (!parseUint(days, n_days) || n_days == 0 || n_days > 36500)) {
    fprintf(stderr, "sarkd: keys create: --expires-in takes a number of days (1 to 36500)\n");
    return kExitUsage;
  }
  std::string key, id;
  if (!newGatewayKey(key, id)) {
    fprintf(stderr, "sarkd: keys create: no random bytes from the kernel\n");
    return 1;
  }
  std::string hash = keyHashHex(key);
  std::string expires = days.empty() ? "NULL" : "now() + interval '" + days + " days'";
  std::string scope_array = "{" + scopes + "}";
  const char* params[] = {id.c_str(), name.c_str(), hash.c_str(), scope_array.c_str()};
  std::string sql = "INSERT INTO gateway_keys (id, name, key_hash, scopes, expires_at) "
                    "VALUES ($1, $2, decode($3, 'hex'), $4::text[], " + expires + ") "
                    "RETURNING coalesce(to_char(expires_at AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'never')";
  PgResultPtr g(PQexecParams(c, sql.c_str(), 4, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(g.get()) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(g.get(), PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0) {
      fprintf(stderr, "sarkd: keys create: a key named \"%s\" exists and is not revoked\n",
              name.c_str());
      return 1;
    }
    fprintf(stderr, "sarkd: keys create: %s", PQresultErrorMessage(g.get()));
    return 1;
  }
  announce(cfg, "changed");
  fprintf(stderr, "created gateway key %s (name \"%s\", scopes %s, expires %s)\n", id.c_str(),
          name.c_str(), scopes.c_str(), PQgetvalue(g.get(), 0, 0));
  fprintf(stderr, "the key is shown once, below: sarkd keeps only its SHA-256\n");
  printf("%s\n", key.c_str());
  return 0;
}

int list(PGconn* c) {
  const char* sql =
      "SELECT id, name, array_to_string(scopes, ','), "
      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
      "coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), "
      "coalesce(to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), "
      "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
      "WHEN expires_at <= now() THEN 'expired' ELSE 'active' END "
      "FROM gateway_keys ORDER BY created_at, id";
  PgResultPtr g(PQexec(c, sql));
  if (PQresultStatus(g.get()) != PGRES_TUPLES_OK) {
    fprintf(stderr, "sarkd: keys list: %s", PQresultErrorMessage(g.get()));
    return 1;
  }
  printf("id\tname\tscopes\tcreated\texpires\tlast_used\tstate\n");
  for (int i = 0; i < PQntuples(g.get()); i++) {
    for (int f = 0; f < 7; f++) {
      printf("%s%s", f ? "\t" : "", PQgetvalue(g.get(), i, f));
    }
    printf("\n");
  }
  return 0;
}

int revoke(PGconn* c, const Config& cfg, int argc, char** argv) {
  if (argc != 1) {
    usage(stderr);
    return kExitUsage;
  }
  const char* params[] = {argv[0]};
  PgResultPtr g(PQexecParams(c,
                               "UPDATE gateway_keys SET revoked_at = now() "
                               "WHERE (id = $1 OR name = $1) AND revoked_at IS NULL "
                               "RETURNING id, encode(key_hash, 'hex')",
                               1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(g.get()) != PGRES_TUPLES_OK) {
    fprintf(stderr, "sarkd: keys revoke: %s", PQresultErrorMessage(g.get()));
    return 1;
  }
  if (PQntuples(g.get()) == 0) {
    fprintf(stderr, "sarkd: keys revoke: no active key has the id or name \"%s\"\n", argv[0]);
    return 1;
  }
  for (int i = 0; i < PQntuples(g.get()); i++) {
    announce(cfg, std::string("revoke:") + PQgetvalue(g.get(), i, 1));
    printf("revoked %s\n", PQgetvalue(g.get(), i, 0));
  }
  return 0;
}

} // namespace

int runKeysCommand(const Config& cfg, int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return kExitUsage;
  }
  std::string what = argv[1];
  if (what != "create" && what != "list" && what != "revoke") {
    fprintf(stderr, "sarkd: keys: unknown command: %s\n", argv[1]);
    usage(stderr);
    return kExitUsage;
  }
  PgConnPtr guard = adminConnect(cfg, "keys");
  if (!guard) {
    return 1;
  }
  PGconn* c = guard.get();
  if (what == "create") {
    return create(c, cfg, argc - 2, argv + 2);
  }
  if (what == "list") {
    return argc == 2 ? list(c) : (usage(stderr), kExitUsage);
  }
  return revoke(c, cfg, argc - 2, argv + 2);
}

} // namespace sark
