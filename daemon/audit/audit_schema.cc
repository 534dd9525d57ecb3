#include "audit/audit_schema.h"

#include "audit/audit_query.h"
#include "keys/gateway_keys.h"
#include "registry/registry.h"

namespace sark {
namespace {

// 1: the partitioned table, its catch-all partition and indexes.  Indexes
// created on the parent are created on every partition, present and
// future.
constexpr const char* kAuditTableSql = R"sql(
CREATE TABLE gateway_audit_events (
  id                 uuid         NOT NULL,
  event_type         varchar(50)  NOT NULL,
  user_id            text,
  agent_id           text,
  server_name        text,
  tool_name          text,
  action             text,
  sensitivity_level  text,
  decision           varchar(10)  NOT NULL,
  reason             text         NOT NULL DEFAULT '',
  cache_layer        text,
  latency_us         integer,
  policy_revision    text,
  gateway_request_id text         NOT NULL DEFAULT '',
  client_ip          text,
  metadata           jsonb,
  "timestamp"        timestamptz  NOT NULL,
  created_at         timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");

-- Rows outside every monthly partition land here, so an insert never
-- fails for lack of a partition.
CREATE TABLE gateway_audit_events_default
  PARTITION OF gateway_audit_events DEFAULT;

CREATE INDEX ix_gateway_audit_user_id
  ON gateway_audit_events (user_id);
CREATE INDEX ix_gateway_audit_timestamp_user
  ON gateway_audit_events ("timestamp" DESC, user_id);
CREATE INDEX ix_gateway_audit_event_type
  ON gateway_audit_events (event_type);
CREATE INDEX ix_gateway_audit_server_name
  ON gateway_audit_events (server_name);
-- Decision events carry no metadata; a GIN index would still store an
-- entry for each NULL (a fifth of the cost of a row).  Containment
-- queries (metadata @> ...) imply NOT NULL, so they use this index.
CREATE INDEX ix_gateway_audit_metadata
  ON gateway_audit_events USING gin (metadata) WHERE metadata IS NOT NULL;
)sql";

// 2: monthly partitions gateway_audit_events_YYYY_MM (UTC months), created
// ahead by sark_audit_ensure_partitions(months_ahead).  A month that
// already exists is skipped.  Rows of a new month that are already in the
// default partition are moved into the new partition before it is
// attached (attaching would fail otherwise).
constexpr const char* kAuditPartitionsSql = R"sql(
CREATE OR REPLACE FUNCTION sark_audit_ensure_partitions(months_ahead integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
  schema_name text;
  first_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  lo timestamp;
  lo_text text;
  hi_text text;
  part text;
  created integer := 0;
BEGIN
  -- Serialised with migrations and with other sarkd doing the same.
  PERFORM pg_advisory_xact_lock(1396789835, 1);
  SELECT n.nspname INTO schema_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = 'gateway_audit_events'::regclass;
  FOR i IN 0 .. greatest(0, least(coalesce(months_ahead, 0), 120)) LOOP
    lo := first_month + make_interval(months => i);
    lo_text := to_char(lo, 'YYYY-MM-DD HH24:MI:SS') || '+00';
    hi_text := to_char(lo + interval '1 month', 'YYYY-MM-DD HH24:MI:SS') || '+00';
    part := 'gateway_audit_events_' || to_char(lo, 'YYYY_MM');
    CONTINUE WHEN to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.gateway_audit_events INCLUDING DEFAULTS)',
                   schema_name, part, schema_name);
    EXECUTE format('WITH moved AS (DELETE FROM %I.gateway_audit_events_default'
                   ' WHERE "timestamp" >= %L::timestamptz AND "timestamp" < %L::timestamptz'
                   ' RETURNING *) INSERT INTO %I.%I SELECT * FROM moved',
                   schema_name, lo_text, hi_text, schema_name, part);
    EXECUTE format('ALTER TABLE %I.gateway_audit_events ATTACH PARTITION %I.%I'
                   ' FOR VALUES FROM (%L) TO (%L)',
                   schema_name, schema_name, part, lo_text, hi_text);
    created := created + 1;
  END LOOP;
  RETURN created;
END
$fn$;

SELECT sark_audit_ensure_partitions(3);
)sql";

// 3: hourly summary.  Grouping columns are never NULL (coalesce), so the
// unique index that REFRESH ... CONCURRENTLY needs really is unique.
constexpr const char* kAuditHourlySql = R"sql(
CREATE MATERIALIZED VIEW gateway_audit_hourly AS
SELECT date_trunc('hour', "timestamp", 'UTC') AS hour,
       event_type,
       decision,
       coalesce(server_name, '') AS server_name,
       coalesce(tool_name, '') AS tool_name,
       count(*) AS events,
       count(DISTINCT user_id) AS users,
       avg(latency_us)::double precision AS avg_latency_us,
       max(latency_us) AS max_latency_us
  FROM gateway_audit_events
 GROUP BY 1, 2, 3, 4, 5;

CREATE UNIQUE INDEX gateway_audit_hourly_key
  ON gateway_audit_hourly (hour, event_type, decision, server_name, tool_name);
)sql";

std::string lockCall(int which) {
  return "SELECT pg_advisory_xact_lock(" + std::to_string(kAuditLockKey) + ", " +
         std::to_string(which) + ")";
}

} // namespace

const std::vector<Migration>& auditMigrations() {
  static const std::vector<Migration> migrations{
      {1, "gateway_audit_events", kAuditTableSql},
      {2, "audit_monthly_partitions", kAuditPartitionsSql},
      {3, "gateway_audit_hourly", kAuditHourlySql},
      {4, "gateway_keys", kGatewayKeysSql},
      {5, "mcp_registry", kRegistrySql},
      {6, "audit_keyset_indexes", kAuditKeysetSql},
  };
  return migrations;
}

std::string migrationCheckSql(const Migration& m, uint32_t timeout_ms) {
  return "BEGIN; SET LOCAL statement_timeout = " + std::to_string(timeout_ms) + "; " +
         lockCall(kAuditLockMigrate) +
         "; CREATE TABLE IF NOT EXISTS sark_schema_migrations ("
         "version integer PRIMARY KEY, name text NOT NULL, "
         "applied_at timestamptz NOT NULL DEFAULT now()); "
         "SELECT 1 FROM sark_schema_migrations WHERE version = " +
         std::to_string(m.version);
}

std::string migrationApplySql(const Migration& m) {
  // The name is a constant of ours (no quotes in it).
  return std::string(m.sql) +
         ";\nINSERT INTO sark_schema_migrations (version, name) VALUES (" +
         std::to_string(m.version) + ", '" + m.name + "');\nCOMMIT";
}

const char* const kAuditEnsurePartitionsSql = "SELECT sark_audit_ensure_partitions(3)";

const char* const kAuditRefreshHourlySql =
    "DO $$ BEGIN "
    "IF pg_try_advisory_xact_lock(1396789835, 2) THEN "
    "REFRESH MATERIALIZED VIEW CONCURRENTLY gateway_audit_hourly; "
    "END IF; END $$";

} // namespace sark
