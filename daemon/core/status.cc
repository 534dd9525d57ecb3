#include "core/sarkd.h"

#include <unistd.h>

#include "core/clock.h"
#include "core/json_util.h"

// sarkd's health and counters for the workers' /health/ready,
// /health/detailed and /metrics (STATUS_RESP, docs/design.md,
// Operations).  Each dependency says whether it is healthy now, the
// latency of its last answer when known, its last error and its circuit.

namespace sark {
namespace {

void nullableStr(JsonWriter& w, const std::string& s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
}

void dependency(JsonWriter& w, const char* name, bool healthy, double latency_ms,
                const std::string& error, const char* circuit) {
  w.Key(name);
  w.StartObject();
  w.Key("healthy");
  w.Bool(healthy);
  w.Key("latency_ms");
  if (latency_ms < 0) {
    w.Null();
  } else {
    w.Double(latency_ms);
  }
  w.Key("error");
  nullableStr(w, healthy ? std::string() : error);
  w.Key("circuit");
  w.String(circuit);
  w.EndObject();
}

void counter(JsonWriter& w, const char* name, uint64_t v) {
  w.Key(name);
  w.Uint64(v);
}

} // namespace

std::string Sarkd::statusJson() const {
  std::string out;
  StringOutStream os(out);
  JsonWriter w(os);

  w.StartObject();

  w.Key("sarkd");
  w.StartObject();
  w.Key("pid");
  w.Int(static_cast<int>(getpid()));
  counter(w, "uptime_s", (monotonicUs() - started_us_) / 1000000);
  w.Key("draining");
  w.Bool(draining_);
  counter(w, "connections", server_.connectionCount());
  counter(w, "pending_decisions", authorizer_.pending());
  w.Key("policy_revision");
  nullableStr(w, revision_.current());
  w.EndObject();

  w.Key("dependencies");
  w.StartObject();

  const OpaClient::Health& oh = opa_.health();
  bool opa_down = opa_.allServersDown();
  bool opa_ok = oh.last_ok_us != 0 && oh.last_ok_us >= oh.last_failure_us && !opa_down;
  dependency(w, "opa", opa_ok,
             oh.last_ok_us != 0 || oh.last_latency_us != 0 ? oh.last_latency_us / 1000.0 : -1,
             oh.last_error.empty() ? std::string("no answer from OPA yet") : oh.last_error,
             opa_down ? "open" : "closed");

  if (cfg_.cache_l2_enabled) {
    const char* state = CircuitBreaker::name(redis_.breakerState());
    bool redis_ok = redis_.usable();
    dependency(w, "redis", redis_ok, -1,
               redis_.breakerState() == CircuitBreaker::State::Closed
                   ? std::string("not connected")
                   : std::string("circuit ") + state,
               state);
  }

  if (store_.configured()) {
    const char* state = store_.circuitState();
    bool pg_ok = std::string_view(state) == "closed";
    dependency(w, "postgresql", pg_ok, -1,
               store_.lastError().empty() ? std::string("circuit ") + state : store_.lastError(),
               state);
  }

  w.EndObject();

  const AuditWriter::Stats& as = audit_.stats();
  w.Key("audit");
  w.StartObject();
  counter(w, "queued_events", audit_.queuedEvents());
  counter(w, "spool_events", spool_.pendingEvents());
  counter(w, "spool_batches", spool_.pendingBatches());
  counter(w, "received", as.received);
  counter(w, "written", as.written);
  counter(w, "spooled", as.spooled);
  counter(w, "replayed", as.replayed);
  counter(w, "invalid", as.invalid);
  counter(w, "refused", as.refused);
  counter(w, "rejected_batches", as.rejected);
  counter(w, "lost", as.lost);
  w.EndObject();

  // per OPA server: the URL is an operator's setting, a bounded label
  w.Key("opa_servers");
  w.StartArray();
  for (size_t i = 0; i < opa_.serverCount(); i++) {
    const OpaClient::ServerStats& st = opa_.serverStats(i);
    w.StartObject();
    w.Key("url");
    w.String(redactUrl(opa_.serverUrl(i)).c_str()); // no credentials in a label
    counter(w, "requests", st.requests);
    counter(w, "errors", st.errors);
    counter(w, "timeouts", st.timeouts);
    counter(w, "latency_sum_us", st.latency_sum_us);
    w.Key("latency_buckets");
    w.StartArray();
    for (uint64_t n : st.latency) {
      w.Uint64(n);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();

  const Invalidator::Stats& is = invalidator_.stats();
  w.Key("invalidations");
  w.StartObject();
  counter(w, "issued", is.issued);
  counter(w, "confirmed", is.confirmed);
  counter(w, "partial", is.partial);
  counter(w, "received", is.received);
  w.EndObject();

  const Authorizer::Stats& zs = authorizer_.stats();
  const L2Cache::Stats& ls = l2_.stats();
  w.Key("counters");
  w.StartObject();
  counter(w, "decision_requests", zs.requests);
  counter(w, "coalesced", zs.coalesced);
  counter(w, "opa_evaluations", zs.evaluations);
  counter(w, "l2_hits", ls.hits);
  counter(w, "l2_misses", ls.misses);
  counter(w, "l2_stale", ls.stale);
  counter(w, "l2_errors", ls.errors);
  counter(w, "l2_unauthenticated", ls.unauthenticated);
  w.EndObject();

  w.EndObject();
  return out;
}

} // namespace sark
