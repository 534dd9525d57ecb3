#include "authz/opa_client.h"

#include <cstring>
#include <utility>

#include "core/clock.h"
#include "core/log.h"
#include "sark_proto.h"

namespace sark {
namespace {

// Largest response body read; beyond it the call fails.  Decisions are
// small; /v1/policies carries every policy's source and AST.
constexpr size_t kMaxDecisionResponse = 2 * SARK_PROTO_MAX_PAYLOAD;
constexpr size_t kMaxControlResponse = 64 * 1024 * 1024;
// How long a server that refused a connection is passed over.
constexpr uint64_t kHostDownUs = 1000000;
// Idle easy handles kept for reuse.
constexpr size_t kMaxFreeEasy = 1024;

bool isConnectFailure(CURLcode rc) {
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
}

} // namespace

OpaClient::OpaClient(EventLoop& loop, const Config& cfg) : loop_(loop), cfg_(cfg) {}

OpaClient::~OpaClient() {
  loop_.cancelTimer(timer_);
  timer_ = 0;
  loop_.cancelTimer(queue_timer_);
  queue_timer_ = 0;
  for (auto& [easy, call] : active_) {
    curl_multi_remove_handle(multi_.get(), easy);
  }
  active_.clear();
  waiting_.clear();
  free_easy_.clear();
  // curl_multi_cleanup may still report sockets to remove (onCurlSocket).
  multi_.reset();
  for (int fd : sockets_) {
    loop_.removeFd(fd);
  }
  sockets_.clear();
}

bool OpaClient::init(std::string& err) {
  for (const std::string& base : cfg_.opa_urls) {
    Host h;
    h.base = base;
    // provenance: the revision that made each answer, in the answer
    h.eval_url = base + "/v1/data/sark/gateway?provenance=true";
    h.a2a_url = base + "/v1/data/sark/a2a?provenance=true";
    hosts_.push_back(std::move(h));
  }
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
  if (list != nullptr) {
    headers_.reset(list);
    list = curl_slist_append(list, "Expect:");
  }
  if (list == nullptr) {
    err = "curl_slist_append failed";
    return false;
  }
  multi_.reset(curl_multi_init());
  if (!multi_) {
    err = "curl_multi_init failed";
    return false;
  }
  CURLM* m = multi_.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &OpaClient::onCurlSocket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &OpaClient::onCurlTimer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(cfg_.opa_max_connections));
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(cfg_.opa_max_connections * hosts_.size() + 1));
  return true;
}

int OpaClient::pickHost(bool need_capacity) const {
  uint64_t now = monotonicUs();
  int best = -1;
  bool best_up = false;
  size_t n = hosts_.size();
  // Start at a rotating index so ties spread over the servers.
  for (size_t k = 0; k < n; k++) {
    size_t i = (next_host_ + k) % n;
    const Host& h = hosts_[i];
    if (need_capacity && h.in_flight >= cfg_.opa_max_connections) {
      continue;
    }
    bool up = h.down_until_us <= now;
    if (best < 0 || (up && !best_up) ||
        (up == best_up && h.in_flight < hosts_[static_cast<size_t>(best)].in_flight)) {
      best = static_cast<int>(i);
      best_up = up;
    }
  }
  return best;
}

bool OpaClient::evaluate(std::string body, bool a2a, OpaCallback done) {
  if (closed_) {
    return false;
  }
  auto call = std::make_unique<Call>();
  call->body = std::move(body);
  call->is_post = true;
  call->a2a = a2a;
  call->is_evaluation = true;
  call->max_response = kMaxDecisionResponse;
  call->done = std::move(done);
  call->enqueued_us = monotonicUs();
  int host = waiting_.empty() ? pickHost(true) : -1;
  if (host >= 0) {
    active_evaluations_++;
    start(std::move(call), host);
    return true;
  }
  if (waiting_.size() >= cfg_.max_inflight) {
    return false;
  }
  waiting_.push_back(std::move(call));
  armQueueTimer();
  return true;
}

void OpaClient::get(const std::string& path, OpaCallback done) {
  auto call = std::make_unique<Call>();
  call->done = std::move(done);
  call->max_response = kMaxControlResponse;
  call->enqueued_us = monotonicUs();
  if (closed_ || hosts_.empty()) {
    OpaResult r;
    r.aborted = true;
    complete(std::move(call), r);
    return;
  }
  int host = pickHost(false);
  call->url = hosts_[static_cast<size_t>(host)].base + path;
  start(std::move(call), host);
}

// How long `call` may still take: OPA_TIMEOUT_MS counts from when it was
// asked, so the time it waited for a free connection is its own; 0 = none
// left.
uint64_t OpaClient::msLeft(const Call& call, uint64_t now_us) const {
  uint64_t waited_ms = (now_us - call.enqueued_us) / 1000;
  return waited_ms < cfg_.opa_timeout_ms ? cfg_.opa_timeout_ms - waited_ms : 0;
}

// `call` ran out of time before it could start: answered as a timeout.
void OpaClient::expire(CallPtr call) {
  OpaResult r;
  r.curl_code = CURLE_OPERATION_TIMEDOUT;
  r.error_text = "no free connection to OPA within OPA_TIMEOUT_MS";
  complete(std::move(call), r);
}

// One timer for the FIFO: its head has the nearest deadline (every call
// gets the same OPA_TIMEOUT_MS), so when it fires the calls whose time is
// up are answered, in order, and it is set again for the new head.
void OpaClient::armQueueTimer() {
  if (queue_timer_ != 0 || waiting_.empty()) {
    return;
  }
  uint64_t left = msLeft(*waiting_.front(), monotonicUs());
  queue_timer_ = loop_.addTimer(left > 0 ? left : 1, [this]() {
    queue_timer_ = 0;
    uint64_t now = monotonicUs();
    while (!waiting_.empty() && msLeft(*waiting_.front(), now) == 0) {
      CallPtr call = std::move(waiting_.front());
      waiting_.pop_front();
      expire(std::move(call));
    }
    armQueueTimer();
  });
}

void OpaClient::start(CallPtr call, int host) {
  Host& h = hosts_[static_cast<size_t>(host)];
  uint64_t left = msLeft(*call, monotonicUs());
  if (left == 0) {
    if (call->is_evaluation) {
      active_evaluations_--;
    }
    expire(std::move(call));
    return;
  }
  next_host_ = (static_cast<size_t>(host) + 1) % hosts_.size();
  call->host = host;
  if (call->started_us == 0) {
    call->started_us = monotonicUs();
  }
  call->errbuf[0] = '\0';
  if (call->is_post) {
    call->url = call->a2a ? h.a2a_url : h.eval_url;
  }

  if (!free_easy_.empty()) {
    call->easy = std::move(free_easy_.back());
    free_easy_.pop_back();
  } else {
    call->easy.reset(curl_easy_init());
  }
  CURL* e = call->easy.get();
  if (e == nullptr) {
    OpaResult r;
    r.curl_code = CURLE_OUT_OF_MEMORY;
    r.error_text = "curl_easy_init failed";
    r.server = h.base;
    if (call->is_evaluation) {
      active_evaluations_--;
    }
    complete(std::move(call), r);
    return;
  }

  curl_easy_setopt(e, CURLOPT_URL, call->url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, call.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OpaClient::onCurlWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(left));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  // Never through a proxy from http_proxy/HTTPS_PROXY (also skips the
  // per-request environment lookups).
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get());
  if (call->is_post) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call->body.size()));
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }

  CURLMcode mc = curl_multi_add_handle(multi_.get(), e);
  if (mc != CURLM_OK) {
    OpaResult r;
    r.curl_code = CURLE_FAILED_INIT;
    r.error_text = curl_multi_strerror(mc);
    r.server = h.base;
    curl_easy_reset(e);
    free_easy_.push_back(std::move(call->easy));
    if (call->is_evaluation) {
      active_evaluations_--;
    }
    complete(std::move(call), r);
    return;
  }
  h.in_flight++;
  active_.emplace(e, std::move(call));
}

int OpaClient::onCurlSocket(CURL*, curl_socket_t s, int what, void* userp, void*) {
  auto* self = static_cast<OpaClient*>(userp);
  if (what == CURL_POLL_REMOVE) {
    self->loop_.removeFd(s);
    self->sockets_.erase(s);
    return 0;
  }
  uint32_t events = 0;
  if (what & CURL_POLL_IN) {
    events |= EPOLLIN;
  }
  if (what & CURL_POLL_OUT) {
    events |= EPOLLOUT;
  }
  if (self->sockets_.count(s) != 0 && self->loop_.modifyFd(s, events)) {
    return 0;
  }
  if (self->loop_.addFd(s, events, [self, s](uint32_t ev) { self->onSocketEvent(s, ev); })) {
    self->sockets_.insert(s);
    return 0;
  }
  return -1;
}

int OpaClient::onCurlTimer(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<OpaClient*>(userp);
  self->loop_.cancelTimer(self->timer_);
  self->timer_ = 0;
  if (timeout_ms >= 0) {
    self->timer_ = self->loop_.addTimer(static_cast<uint64_t>(timeout_ms),
                                        [self]() { self->onTimeout(); });
  }
  return 0;
}

size_t OpaClient::onCurlWrite(char* data, size_t size, size_t nmemb, void* userp) {
  auto* call = static_cast<Call*>(userp);
  size_t n = size * nmemb;
  if (call->response.size() + n > call->max_response) {
    call->too_large = true;
    return 0; // makes libcurl fail the transfer with CURLE_WRITE_ERROR
  }
  call->response.append(data, n);
  return n;
}

void OpaClient::onSocketEvent(int fd, uint32_t events) {
  int flags = 0;
  if (events & EPOLLIN) {
    flags |= CURL_CSELECT_IN;
  }
  if (events & EPOLLOUT) {
    flags |= CURL_CSELECT_OUT;
  }
  if (events & (EPOLLERR | EPOLLHUP)) {
    flags |= CURL_CSELECT_ERR;
  }
  int running = 0;
  curl_multi_socket_action(multi_.get(), fd, flags, &running);
  checkDone();
}

void OpaClient::onTimeout() {
  timer_ = 0;
  int running = 0;
  curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
  checkDone();
}

void OpaClient::checkDone() {
  CURLMsg* msg;
  int left = 0;
  while ((msg = curl_multi_info_read(multi_.get(), &left)) != nullptr) {
    if (msg->msg != CURLMSG_DONE) {
      continue;
    }
    CURL* easy = msg->easy_handle;
    CURLcode rc = msg->data.result;
    finish(easy, rc);
  }
}

void OpaClient::finish(CURL* easy, CURLcode rc) {
  auto node = active_.extract(easy);
  if (node.empty()) {
    return;
  }
  CallPtr call = std::move(node.mapped());
  Host& h = hosts_[static_cast<size_t>(call->host)];
  h.in_flight--;
  if (call->is_evaluation) {
    active_evaluations_--;
  }

  OpaResult r;
  r.curl_code = rc;
  r.server = h.base;
  r.too_large = call->too_large;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.http_status);
  if (rc != CURLE_OK) {
    r.error_text = call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(rc);
    if (isConnectFailure(rc)) {
      h.down_until_us = monotonicUs() + kHostDownUs;
    }
  } else {
    h.down_until_us = 0;
  }
  r.body = std::move(call->response);

  curl_multi_remove_handle(multi_.get(), easy);
  // Drop every pointer into `call` before the handle is reused.
  curl_easy_reset(easy);
  if (free_easy_.size() < kMaxFreeEasy) {
    free_easy_.push_back(std::move(call->easy));
  } else {
    call->easy.reset();
  }

  // Nothing reached OPA: another server can answer instead (evaluation
  // has no side effects).
  if (rc == CURLE_COULDNT_CONNECT && call->is_evaluation && retryElsewhere(call)) {
    pump();
    return;
  }

  pump();
  complete(std::move(call), r);
}

bool OpaClient::retryElsewhere(CallPtr& call) {
  if (closed_ || ++call->attempts >= hosts_.size()) {
    return false;
  }
  int host = pickHost(true);
  if (host < 0 || host == call->host ||
      hosts_[static_cast<size_t>(host)].down_until_us > monotonicUs()) {
    return false;
  }
  call->response.clear();
  call->too_large = false;
  active_evaluations_++;
  start(std::move(call), host);
  return true;
}

void OpaClient::pump() {
  while (!waiting_.empty() && !closed_) {
    int host = pickHost(true);
    if (host < 0) {
      return;
    }
    CallPtr call = std::move(waiting_.front());
    waiting_.pop_front();
    active_evaluations_++;
    start(std::move(call), host);
  }
}

void OpaClient::complete(CallPtr call, OpaResult& result) {
  uint64_t now = monotonicUs();
  if (call->started_us != 0) {
    result.queue_us = call->started_us - call->enqueued_us;
    result.opa_us = now - call->started_us;
  } else {
    result.queue_us = now - call->enqueued_us;
  }
  if (!result.aborted && call->is_evaluation && call->host >= 0) {
    ServerStats& st = hosts_[static_cast<size_t>(call->host)].stats;
    st.requests++;
    if (result.curl_code == CURLE_OPERATION_TIMEDOUT) {
      st.timeouts++;
    } else if (result.curl_code != CURLE_OK || result.http_status != 200 || result.too_large) {
      st.errors++;
    }
    size_t b = 0;
    while (b < kLatencyBuckets && result.opa_us > kLatencyBoundsUs[b]) {
      b++;
    }
    st.latency[b]++;
    st.latency_sum_us += result.opa_us;
  }
  if (!result.aborted) {
    if (result.curl_code == CURLE_OK && result.http_status == 200 && !result.too_large) {
      health_.last_ok_us = now;
      health_.last_latency_us = result.opa_us;
    } else {
      health_.last_failure_us = now;
      if (result.curl_code != CURLE_OK) {
        health_.last_error = result.error_text.empty() ? curl_easy_strerror(result.curl_code)
                                                       : result.error_text;
      } else if (result.too_large) {
        health_.last_error = "response too large";
      } else {
        health_.last_error = "HTTP " + std::to_string(result.http_status);
        health_.last_latency_us = result.opa_us;
      }
    }
  }
  OpaCallback done = std::move(call->done);
  call.reset();
  done(result);
}

bool OpaClient::allServersDown() const {
  uint64_t now = monotonicUs();
  for (const Host& h : hosts_) {
    if (h.down_until_us <= now) {
      return false;
    }
  }
  return !hosts_.empty();
}

void OpaClient::abortAll() {
  closed_ = true;
  loop_.cancelTimer(queue_timer_);
  queue_timer_ = 0;
  std::vector<CallPtr> calls;
  for (auto& [easy, call] : active_) {
    curl_multi_remove_handle(multi_.get(), easy);
    curl_easy_reset(easy);
    hosts_[static_cast<size_t>(call->host)].in_flight--;
    calls.push_back(std::move(call));
  }
  active_.clear();
  while (!waiting_.empty()) {
    calls.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  active_evaluations_ = 0;
  for (CallPtr& call : calls) {
    OpaResult r;
    r.aborted = true;
    if (call->host >= 0) {
      r.server = hosts_[static_cast<size_t>(call->host)].base;
    }
    complete(std::move(call), r);
  }
}

} // namespace sark
