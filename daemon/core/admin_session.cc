#include "core/admin_session.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cstdio>

#include "audit/audit_schema.h"
#include "cache/channel_seal.h"

namespace sark {
namespace {

bool execKeep(PGconn* c, const std::string& sql, std::string& err, PGresult** keep) {
  PGresult* r = PQexec(c, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    err = PQresultErrorMessage(r);
    PQclear(r);
    return false;
  }
  if (keep) {
    *keep = r;
  } else {
    PQclear(r);
  }
  return true;
}

// The daemon's migrations, applied the same way (advisory lock, version
// check, one transaction each).
bool migrate(PGconn* c, const Config& cfg, std::string& err) {
  for (const Migration& m : auditMigrations()) {
    PGresult* r = nullptr;
    if (!execKeep(c, migrationCheckSql(m, cfg.database_statement_timeout_ms), err, &r)) {
      std::string ignored;
      adminExec(c, "ROLLBACK", ignored);
      return false;
    }
    bool applied = PQntuples(r) == 1;
    PQclear(r);
    if (!adminExec(c, applied ? std::string("COMMIT") : migrationApplySql(m), err)) {
      std::string ignored;
      adminExec(c, "ROLLBACK", ignored);
      return false;
    }
  }
  return true;
}

} // namespace

bool adminExec(PGconn* c, const std::string& sql, std::string& err) {
  return execKeep(c, sql, err, nullptr);
}

PgConnPtr adminConnect(const Config& cfg, const char* what) {
  if (cfg.database_url.empty()) {
    fprintf(stderr, "sarkd: %s: DATABASE_URL is not set\n", what);
    return nullptr;
  }
  PgConnPtr c(PQconnectdb(cfg.database_url.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    fprintf(stderr, "sarkd: %s: cannot connect to %s: %s", what,
            pgDisplayName(cfg.database_url).c_str(), PQerrorMessage(c.get()));
    return nullptr;
  }
  PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
  std::string err;
  if (!migrate(c.get(), cfg, err)) {
    fprintf(stderr, "sarkd: %s: schema migration failed: %s", what, err.c_str());
    return nullptr;
  }
  return c;
}

void adminAnnounce(const Config& cfg, std::string_view channel, std::string_view message,
                   const char* poll_setting) {
  if (!cfg.cache_l2_enabled) {
    return;
  }
  struct timeval tv = {1, 0};
  redisContext* r = redisConnectWithTimeout(cfg.redis.host.c_str(), cfg.redis.port, tv);
  const char* problem = nullptr;
  if (r == nullptr || r->err) {
    problem = r ? r->errstr : "cannot connect";
  } else {
    redisSetTimeout(r, tv);
    redisReply* reply = nullptr;
    if (!cfg.redis.password.empty()) {
      reply = static_cast<redisReply*>(
          cfg.redis.username.empty()
              ? redisCommand(r, "AUTH %s", cfg.redis.password.c_str())
              : redisCommand(r, "AUTH %s %s", cfg.redis.username.c_str(),
                             cfg.redis.password.c_str()));
      if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
        problem = "AUTH failed";
      }
      freeReplyObject(reply);
    }
    std::string sealed;
    if (problem == nullptr && !ChannelSeal(cfg.cache_l2_hmac_key).seal(channel, message, sealed)) {
      problem = "cannot seal the message with CACHE_L2_HMAC_KEY";
    }
    if (problem == nullptr) {
      reply = static_cast<redisReply*>(redisCommand(r, "PUBLISH %b %b", channel.data(),
                                                    channel.size(), sealed.data(),
                                                    sealed.size()));
      if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
        problem = "PUBLISH failed";
      }
      freeReplyObject(reply);
    }
  }
  if (problem) {
    fprintf(stderr,
            "sarkd: warning: could not tell the daemons through Redis (%s): they see the "
            "change within %s\n",
            problem, poll_setting);
  }
  if (r) {
    redisFree(r);
  }
}

} // namespace sark
