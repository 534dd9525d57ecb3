#include "registry/registry.h"

#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "proto/frame_builder.h"
#include "sark_proto.h"

namespace sark {

const char* const kRegistrySql = R"sql(
CREATE TABLE mcp_servers (
    name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 256),
    url text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    sensitivity_level text NOT NULL DEFAULT 'medium'
        CHECK (sensitivity_level IN ('low', 'medium', 'high', 'critical')),
    owner text,
    teams text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE mcp_tools (
    server_name text NOT NULL REFERENCES mcp_servers (name)
        ON UPDATE CASCADE ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
    description text NOT NULL DEFAULT '',
    sensitivity_level text
        CHECK (sensitivity_level IN ('low', 'medium', 'high', 'critical')),
    parameters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_name, name)
);
CREATE TABLE sark_registry_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO sark_registry_version VALUES (true, 1);
CREATE FUNCTION sark_registry_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sark_registry_version SET version = version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER mcp_servers_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mcp_servers FOR EACH STATEMENT EXECUTE FUNCTION sark_registry_bump();
CREATE TRIGGER mcp_tools_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mcp_tools FOR EACH STATEMENT EXECUTE FUNCTION sark_registry_bump();
)sql";

namespace {

constexpr uint64_t kRetryMs = 1000;

constexpr const char* kVersionSql = "SELECT version FROM sark_registry_version";

// One statement: the version and the document of one snapshot.  Names in
// byte order (COLLATE "C"): the workers search them so.
constexpr const char* kDocumentSql = R"sql(
SELECT v.version, json_build_object('version', v.version, 'servers', coalesce((
  SELECT json_agg(json_build_object(
           'name', s.name, 'url', s.url, 'description', s.description,
           'sensitivity_level', s.sensitivity_level, 'owner', s.owner, 'teams', s.teams,
           'tools', coalesce((
             SELECT json_agg(json_build_object(
                      'name', t.name, 'description', t.description,
                      'sensitivity_level', t.sensitivity_level, 'parameters', t.parameters)
                    ORDER BY t.name COLLATE "C")
               FROM mcp_tools t WHERE t.server_name = s.name), '[]'::json))
         ORDER BY s.name COLLATE "C")
    FROM mcp_servers s), '[]'::json))::text
  FROM sark_registry_version v
)sql";

} // namespace

RegistryStore::RegistryStore(EventLoop& loop, const Config& cfg, ModuleServer& server)
    : loop_(loop), cfg_(cfg), server_(server), seal_(cfg.cache_l2_hmac_key) {}

RegistryStore::~RegistryStore() { close(); }

void RegistryStore::start() {
  if (cfg_.database_url.empty()) {
    // no database: an empty registry, known as such
    frame_.clear();
    FrameBuilder f(frame_, SARK_MSG_REGISTRY, 0);
    f.str(SARK_REG_JSON, R"({"version":0,"servers":[]})");
    f.finish();
    loaded_ = true;
    server_.broadcast(frame_);
    return;
  }
  db_ = std::make_unique<PgConnection>(loop_, cfg_.database_url, pgDisplayName(cfg_.database_url),
                                       cfg_.database_statement_timeout_ms, "registry");
  db_->setCallbacks([this]() { poll(); }, [](std::string_view, bool) {});
  db_->start();
  if (cfg_.cache_l2_enabled) {
    subscriber_ = std::make_unique<RedisConnection>(loop_, cfg_.redis, cfg_.redis_timeout_ms,
                                                    "registry subscriber");
    subscriber_->setSubscriptions({std::string(kRegistryChannel)}, [this](const redisReply* r) {
      // A sealed message polls at once; another (a writer of Redis, or
      // an admin command with another CACHE_L2_HMAC_KEY) at most once a
      // second: the version row says whether anything changed.
      std::string_view channel;
      std::string_view msg;
      uint64_t now_ms = monotonicUs() / 1000;
      ChannelSeal::Received got = seal_.receive(r, channel, msg);
      if (got == ChannelSeal::Received::Sealed ||
          (got == ChannelSeal::Received::Unsealed && now_ms - last_hint_ms_ >= 1000)) {
        last_hint_ms_ = now_ms;
        poll();
      }
    });
    subscriber_->setCallbacks([this]() { poll(); }, [](std::string_view, bool) {});
    subscriber_->start();
  }
}

void RegistryStore::close() {
  loop_.cancelTimer(timer_);
  timer_ = 0;
  if (subscriber_) {
    subscriber_->close();
  }
  if (db_) {
    db_->close();
  }
}

void RegistryStore::onModuleConnected(uint64_t conn_id) {
  if (loaded_) {
    server_.sendFrame(conn_id, frame_);
  }
}

void RegistryStore::schedule(uint64_t delay_ms) {
  if (timer_ == 0) {
    timer_ = loop_.addTimer(delay_ms, [this]() {
      timer_ = 0;
      poll();
    });
  }
}

void RegistryStore::failed(const std::string& error) {
  uint64_t suppressed = 0;
  if (fail_log_.allow(monotonicUs(), suppressed)) {
    LogLine(LogLevel::Warn, "registry not loaded; retrying")
        .str("error", error)
        .boolean("have_registry", loaded_)
        .unum("suppressed", suppressed);
  }
  schedule(kRetryMs);
}

// The version first (one small row); the document only when it changed.
void RegistryStore::poll() {
  if (!db_) {
    return;
  }
  if (busy_) {
    again_ = true;
    return;
  }
  if (!db_->ready()) {
    schedule(kRetryMs);
    return;
  }
  busy_ = true;
  if (!db_->query(kVersionSql, {}, cfg_.database_statement_timeout_ms,
                  [this](PgConnection::Outcome& o) { onVersion(o); })) {
    busy_ = false;
    schedule(kRetryMs);
  }
}

void RegistryStore::onVersion(PgConnection::Outcome& o) {
  busy_ = false;
  uint64_t v = 0;
  if (!o.ok || o.results.empty() || PQntuples(o.results.back().get()) != 1 ||
      !parseUint(PQgetvalue(o.results.back().get(), 0, 0), v)) {
    failed(o.ok ? "no registry version" : o.error);
    return;
  }
  if (static_cast<int64_t>(v) == version_ && !again_) {
    schedule(cfg_.registry_refresh_ms);
    return;
  }
  again_ = false;
  busy_ = true;
  if (!db_->query(kDocumentSql, {}, cfg_.database_statement_timeout_ms,
                  [this](PgConnection::Outcome& d) { onDocument(d); })) {
    busy_ = false;
    schedule(kRetryMs);
  }
}

void RegistryStore::onDocument(PgConnection::Outcome& o) {
  busy_ = false;
  uint64_t v = 0;
  if (!o.ok || o.results.empty() || PQntuples(o.results.back().get()) != 1 ||
      !parseUint(PQgetvalue(o.results.back().get(), 0, 0), v)) {
    failed(o.ok ? "no registry document" : o.error);
    return;
  }
  PGresult* res = o.results.back().get();
  std::string_view doc(PQgetvalue(res, 0, 1), static_cast<size_t>(PQgetlength(res, 0, 1)));
  if (doc.size() > SARK_PROTO_MAX_PAYLOAD - 1024) {
    failed("the registry is larger than a frame (" + std::to_string(doc.size()) + " bytes)");
    return;
  }
  bool first = !loaded_;
  version_ = static_cast<int64_t>(v);
  frame_.clear();
  FrameBuilder f(frame_, SARK_MSG_REGISTRY, 0);
  f.str(SARK_REG_JSON, doc);
  f.finish();
  loaded_ = true;
  size_t sent = server_.broadcast(frame_);
  LogLine(first ? LogLevel::Info : LogLevel::Debug, "registry loaded")
      .unum("version", v)
      .unum("bytes", doc.size())
      .unum("connections", sent);
  if (again_) {
    poll();
  } else {
    schedule(cfg_.registry_refresh_ms);
  }
}

} // namespace sark
