#pragma once

// HTTP client for OPA's REST API: libcurl multi driven by the EventLoop
// (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), keep-alive
// connections, one or more OPA servers chosen by fewest in-flight
// requests, at most OPA_MAX_CONNECTIONS in flight per server and a bounded
// FIFO for the rest.  OPA_TIMEOUT_MS bounds a call from when it is asked,
// time in the FIFO included.

#include <curl/curl.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/config.h"
#include "core/event_loop.h"
#include "core/handles.h"

namespace sark {

// Outcome of one HTTP call, as libcurl reported it.
struct OpaResult {
  CURLcode curl_code{CURLE_OK};
  long http_status{0};
  std::string body;
  std::string error_text;  // libcurl's detailed error when curl_code != CURLE_OK
  bool aborted{false};     // cancelled by sarkd (shutdown); no HTTP outcome
  bool too_large{false};   // response exceeded the size limit
  std::string server;      // base URL of the OPA server used
  uint64_t queue_us{0};    // waiting in the FIFO
  uint64_t opa_us{0};      // from start of the HTTP call to completion
};

using OpaCallback = std::function<void(const OpaResult&)>;

class OpaClient {
public:
  OpaClient(EventLoop& loop, const Config& cfg);
  ~OpaClient();
  OpaClient(const OpaClient&) = delete;
  OpaClient& operator=(const OpaClient&) = delete;

  bool init(std::string& err);

  // POSTs `body` to {OPA}/v1/data/sark/gateway?provenance=true (with
  // `a2a`, /v1/data/sark/a2a).  Returns false (and never calls `done`)
  // when every server is busy and the FIFO is full.
  bool evaluate(std::string body, bool a2a, OpaCallback done);

  // GETs {OPA}{path} (control plane: not queued).  `done` is always called.
  void get(const std::string& path, OpaCallback done);

  // Policy evaluations waiting or in flight.
  size_t pendingEvaluations() const { return waiting_.size() + active_evaluations_; }

  // Completes every call now with `aborted` set; later calls are refused.
  void abortAll();

  // The last outcome of a call to OPA, for health reports.
  struct Health {
    uint64_t last_ok_us{0};      // monotonic; 0 = never
    uint64_t last_failure_us{0};
    uint64_t last_latency_us{0}; // of the last call that reached OPA
    std::string last_error;      // of the last failure
  };
  const Health& health() const { return health_; }
  // Whether every server is marked down after a connection failure.
  bool allServersDown() const;

  // Evaluations per OPA server: counts and a latency histogram.
  static constexpr size_t kLatencyBuckets = 14; // and +Inf
  static constexpr uint64_t kLatencyBoundsUs[kLatencyBuckets] = {
      50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
      2500000};
  struct ServerStats {
    uint64_t requests{0};
    uint64_t errors{0};   // no answer, an HTTP error, or too large
    uint64_t timeouts{0}; // OPA_TIMEOUT_MS passed (queue included)
    uint64_t latency_sum_us{0};
    uint64_t latency[kLatencyBuckets + 1]{}; // not cumulative
  };
  size_t serverCount() const { return hosts_.size(); }
  const std::string& serverUrl(size_t i) const { return hosts_[i].base; }
  const ServerStats& serverStats(size_t i) const { return hosts_[i].stats; }

private:
  struct Host {
    std::string base;
    std::string eval_url;
    std::string a2a_url;
    uint32_t in_flight{0};
    uint64_t down_until_us{0}; // after a connect failure, others are preferred
    ServerStats stats;
  };

  struct Call {
    std::string url;
    std::string body;
    bool is_post{false};
    bool a2a{false};
    bool is_evaluation{false};
    std::string response;
    size_t max_response{0};
    bool too_large{false};
    OpaCallback done;
    CurlEasyPtr easy;
    int host{-1};
    uint32_t attempts{0};
    uint64_t enqueued_us{0};
    uint64_t started_us{0};
    char errbuf[CURL_ERROR_SIZE];
  };
  using CallPtr = std::unique_ptr<Call>;

  static int onCurlSocket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int onCurlTimer(CURLM* multi, long timeout_ms, void* userp);
  static size_t onCurlWrite(char* data, size_t size, size_t nmemb, void* userp);

  int pickHost(bool need_capacity) const;
  uint64_t msLeft(const Call& call, uint64_t now_us) const;
  void expire(CallPtr call);
  void armQueueTimer();
  void start(CallPtr call, int host);
  void onSocketEvent(int fd, uint32_t events);
  void onTimeout();
  void checkDone();
  void finish(CURL* easy, CURLcode rc);
  // After a refused connection, moves an evaluation to another server
  // that is up and has room; false when there is none.
  bool retryElsewhere(CallPtr& call);
  void pump();
  void complete(CallPtr call, OpaResult& result);

  EventLoop& loop_;
  const Config& cfg_;
  CurlSlistPtr headers_;
  CurlMultiPtr multi_;
  std::vector<Host> hosts_;
  std::vector<CurlEasyPtr> free_easy_;
  std::unordered_map<CURL*, CallPtr> active_;
  std::deque<CallPtr> waiting_;
  std::unordered_set<int> sockets_;
  size_t active_evaluations_{0};
  size_t next_host_{0};
  EventLoop::TimerId timer_{0};
  EventLoop::TimerId queue_timer_{0}; // the FIFO head's deadline
  Health health_;
  bool closed_{false};
};

} // namespace sark
