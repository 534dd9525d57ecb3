#include "cache/redis_connection.h"

#include <strings.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/clock.h"

namespace sark {
namespace {

constexpr uint64_t kBackoffMinMs = 100;
constexpr uint64_t kBackoffMaxMs = 2000;
// Connecting plus AUTH/SELECT/SUBSCRIBE must finish within this (or the
// command timeout, when larger).
constexpr uint64_t kReadyTimeoutMs = 1000;

RedisConnection* owner(const redisAsyncContext* ac) {
  return ac != nullptr ? static_cast<RedisConnection*>(ac->data) : nullptr;
}

bool isString(const redisReply* r, const char* s) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
         r->len == strlen(s) && strncasecmp(r->str, s, r->len) == 0;
}

} // namespace

RedisConnection::RedisConnection(EventLoop& loop, const RedisEndpoint& endpoint,
                                 uint32_t timeout_ms, std::string name)
    : loop_(loop), endpoint_(endpoint), timeout_ms_(timeout_ms), name_(std::move(name)),
      backoff_ms_(kBackoffMinMs) {}

RedisConnection::~RedisConnection() { close(); }

void RedisConnection::start() {
  if (state_ == State::Idle && ac_ == nullptr && reconnect_timer_ == 0) {
    connect();
  }
}

void RedisConnection::close() {
  if (state_ == State::Closed) {
    return;
  }
  state_ = State::Closed;
  loop_.cancelTimer(reconnect_timer_);
  loop_.cancelTimer(ready_timer_);
  loop_.cancelTimer(timeout_timer_);
  reconnect_timer_ = ready_timer_ = timeout_timer_ = 0;
  if (ac_ != nullptr) {
    drop("closing");
  }
}

void RedisConnection::connect() {
  reconnect_timer_ = 0;
  if (state_ == State::Closed) {
    return;
  }
  gen_++;
  // Note: a host name is resolved here with a blocking getaddrinfo();
  // use an address (or a local resolver) for VALKEY_URL.
  redisAsyncContext* ac = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (ac == nullptr || ac->err != 0) {
    std::string why = ac == nullptr ? "out of memory" : ac->errstr;
    if (ac != nullptr) {
      redisAsyncFree(ac); // never attached: frees at once, no callbacks
    }
    state_ = State::Connecting;
    onGone(why);
    return;
  }
  ac->data = this;
  ac_ = ac;
  state_ = State::Connecting;
  redisEnableKeepAlive(&ac->c);
  attach();
  if (fd_ < 0) {
    drop("cannot watch the socket");
    return;
  }
  redisAsyncSetConnectCallback(ac, &RedisConnection::onConnectC); // arms write interest
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::onDisconnectC);
  uint64_t budget = std::max<uint64_t>(kReadyTimeoutMs, timeout_ms_);
  ready_timer_ = loop_.addTimer(budget, [this, budget]() {
    ready_timer_ = 0;
    drop("not ready after " + std::to_string(budget) + " ms");
  });
}

// ---------------------------------------------------------------- adapter

void RedisConnection::attach() {
  fd_ = ac_->c.fd;
  reading_ = writing_ = false;
  interest_ = 0;
  uint64_t gen = gen_;
  if (!loop_.addFd(fd_, 0, [this, gen](uint32_t events) { onFdEvent(gen, events); })) {
    fd_ = -1;
    return;
  }
  ac_->ev.data = this;
  ac_->ev.addRead = &RedisConnection::addReadC;
  ac_->ev.delRead = &RedisConnection::delReadC;
  ac_->ev.addWrite = &RedisConnection::addWriteC;
  ac_->ev.delWrite = &RedisConnection::delWriteC;
  ac_->ev.cleanup = &RedisConnection::cleanupC;
}

void RedisConnection::addReadC(void* data) {
  auto* self = static_cast<RedisConnection*>(data);
  self->reading_ = true;
  self->updateInterest();
}

void RedisConnection::delReadC(void* data) {
  auto* self = static_cast<RedisConnection*>(data);
  self->reading_ = false;
  self->updateInterest();
}

void RedisConnection::addWriteC(void* data) {
  auto* self = static_cast<RedisConnection*>(data);
  self->writing_ = true;
  self->updateInterest();
}

void RedisConnection::delWriteC(void* data) {
  auto* self = static_cast<RedisConnection*>(data);
  self->writing_ = false;
  self->updateInterest();
}

// hiredis is about to close the socket and free the context.
void RedisConnection::cleanupC(void* data) {
  auto* self = static_cast<RedisConnection*>(data);
  self->reading_ = self->writing_ = false;
  if (self->fd_ >= 0) {
    self->loop_.removeFd(self->fd_);
    self->fd_ = -1;
  }
  self->interest_ = 0;
}

void RedisConnection::updateInterest() {
  uint32_t want = (reading_ ? EPOLLIN : 0u) | (writing_ ? EPOLLOUT : 0u);
  if (fd_ >= 0 && want != interest_) {
    loop_.modifyFd(fd_, want);
    interest_ = want;
  }
}

void RedisConnection::onFdEvent(uint64_t gen, uint32_t events) {
  redisAsyncContext* ac = ac_;
  if (gen != gen_ || ac == nullptr) {
    return;
  }
  bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  bool handled = false;
  if (reading_ && (events & EPOLLIN || failed)) {
    handled = true;
    redisAsyncHandleRead(ac);
    if (gen != gen_ || ac_ != ac) {
      return; // the context was freed while reading
    }
  }
  if (writing_ && (events & EPOLLOUT || failed)) {
    handled = true;
    redisAsyncHandleWrite(ac);
    if (gen != gen_ || ac_ != ac) {
      return;
    }
  }
  if (failed && !handled) {
    redisAsyncHandleRead(ac); // lets hiredis see the error and disconnect
  }
}

// ---------------------------------------------------------------- connect

void RedisConnection::onConnectC(const redisAsyncContext* ac, int status) {
  RedisConnection* self = owner(ac);
  if (self != nullptr && self->ac_ == ac) {
    self->onConnected(status);
  }
}

void RedisConnection::onConnected(int status) {
  if (status != REDIS_OK) {
    // hiredis frees the context when this returns.
    std::string why = ac_->errstr != nullptr ? ac_->errstr : "connect failed";
    onGone(why);
    return;
  }
  startHandshake();
}

void RedisConnection::startHandshake() {
  state_ = State::Handshake;
  handshake_left_ = 0;
  subscribed_ = 0;
  std::vector<std::vector<std::string_view>> steps;
  if (!endpoint_.password.empty()) {
    if (endpoint_.username.empty()) {
      steps.push_back({"AUTH", endpoint_.password});
    } else {
      steps.push_back({"AUTH", endpoint_.username, endpoint_.password});
    }
  }
  std::string db = std::to_string(endpoint_.db);
  if (endpoint_.db != 0 && channels_.empty()) {
    steps.push_back({"SELECT", db});
  }
  for (const auto& argv : steps) {
    const char* what = argv[0] == "AUTH" ? "AUTH" : "SELECT";
    bool sent = send(argv, [this, what](const redisReply* r) {
      if (r == nullptr) {
        return; // connection gone; onGone() has it
      }
      if (r->type == REDIS_REPLY_ERROR) {
        drop(std::string(what) + " failed: " + std::string(r->str, r->len));
        return;
      }
      if (--handshake_left_ == 0) {
        becomeReady();
      }
    });
    if (!sent) {
      // Deferred through the loop: freeing inside the connect callback
      // is not allowed.
      loop_.addTimer(0, [this, gen = gen_]() {
        if (gen == gen_ && ac_ != nullptr) {
          drop("cannot send the handshake");
        }
      });
      return;
    }
    handshake_left_++;
  }
  if (handshake_left_ == 0) {
    becomeReady();
  }
}

void RedisConnection::becomeReady() {
  if (!channels_.empty() && subscribed_ < channels_.size()) {
    std::vector<const char*> argv{"SUBSCRIBE"};
    std::vector<size_t> lens{9};
    for (const std::string& ch : channels_) {
      argv.push_back(ch.data());
      lens.push_back(ch.size());
    }
    if (redisAsyncCommandArgv(ac_, &RedisConnection::onSubscribeReplyC, this,
                              static_cast<int>(argv.size()), argv.data(),
                              lens.data()) != REDIS_OK) {
      loop_.addTimer(0, [this, gen = gen_]() {
        if (gen == gen_ && ac_ != nullptr) {
          drop("cannot subscribe");
        }
      });
    }
    return; // ready once every channel is confirmed
  }
  loop_.cancelTimer(ready_timer_);
  ready_timer_ = 0;
  state_ = State::Ready;
  backoff_ms_ = kBackoffMinMs;
  LogLine(attempts_ > 0 ? LogLevel::Info : LogLevel::Debug, "redis connected")
      .str("conn", name_)
      .str("redis", endpoint_.display())
      .unum("failed_attempts", attempts_);
  attempts_ = 0;
  if (on_ready_) {
    on_ready_();
  }
}

void RedisConnection::onSubscribeReplyC(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(privdata);
  if (self != nullptr && self->ac_ == ac) {
    self->onSubscribeReply(static_cast<const redisReply*>(reply));
  }
}

void RedisConnection::onSubscribeReply(const redisReply* r) {
  if (r == nullptr || state_ == State::Closed || r->type != REDIS_REPLY_ARRAY ||
      r->elements < 3) {
    return;
  }
  if (isString(r->element[0], "subscribe")) {
    if (state_ == State::Handshake && ++subscribed_ == channels_.size()) {
      becomeReady();
    }
    return;
  }
  if (on_message_) {
    on_message_(r);
  }
}

// ---------------------------------------------------------------- commands

bool RedisConnection::command(const std::vector<std::string_view>& argv, ReplyCallback cb) {
  if (state_ != State::Ready || !channels_.empty()) {
    return false;
  }
  return send(argv, std::move(cb));
}

bool RedisConnection::send(const std::vector<std::string_view>& argv, ReplyCallback cb) {
  if (ac_ == nullptr || argv.empty() || argv.size() > 1000000) {
    return false;
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (std::string_view a : argv) {
    ptrs.push_back(a.data() != nullptr ? a.data() : "");
    lens.push_back(a.size());
  }
  auto p = std::make_unique<Pending>();
  p->deadline_us = monotonicUs() + static_cast<uint64_t>(timeout_ms_) * 1000;
  p->cb = std::move(cb);
  Pending* raw = p.get();
  pending_.push_back(std::move(p));
  if (redisAsyncCommandArgv(ac_, &RedisConnection::onReplyC, raw, static_cast<int>(ptrs.size()),
                            ptrs.data(), lens.data()) != REDIS_OK) {
    pending_.pop_back();
    return false;
  }
  armTimeout();
  return true;
}

void RedisConnection::onReplyC(redisAsyncContext* ac, void* reply, void* privdata) {
  RedisConnection* self = owner(ac);
  if (self != nullptr) {
    self->onReply(static_cast<Pending*>(privdata), static_cast<const redisReply*>(reply));
  }
}

void RedisConnection::onReply(Pending* p, const redisReply* reply) {
  // Replies come in order, so this is nearly always the front.
  auto it = pending_.begin();
  while (it != pending_.end() && it->get() != p) {
    ++it;
  }
  if (it == pending_.end()) {
    return;
  }
  std::unique_ptr<Pending> owned = std::move(*it);
  pending_.erase(it);
  if (state_ == State::Closed) {
    return;
  }
  if (owned->cb) {
    owned->cb(reply);
  }
}

void RedisConnection::armTimeout() {
  if (timeout_timer_ != 0 || pending_.empty()) {
    return;
  }
  uint64_t now = monotonicUs();
  uint64_t deadline = pending_.front()->deadline_us;
  uint64_t delay_ms = deadline > now ? (deadline - now + 999) / 1000 : 0;
  timeout_timer_ = loop_.addTimer(delay_ms, [this]() { onTimeout(); });
}

void RedisConnection::onTimeout() {
  timeout_timer_ = 0;
  if (pending_.empty() || ac_ == nullptr) {
    return;
  }
  if (pending_.front()->deadline_us <= monotonicUs()) {
    drop("command timed out after " + std::to_string(timeout_ms_) + " ms (" +
         std::to_string(pending_.size()) + " in flight)");
    return;
  }
  armTimeout();
}

// ---------------------------------------------------------------- teardown

void RedisConnection::drop(std::string reason) {
  redisAsyncContext* ac = ac_;
  if (ac == nullptr) {
    return;
  }
  drop_reason_ = std::move(reason);
  bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  bool in_callback = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
  if (state_ != State::Closed) {
    state_ = State::Connecting; // refuse new commands from here on
  }
  // Pending callbacks get a null reply; a connected context then calls
  // onDisconnectC (at once, or after the current callback returns).
  redisAsyncFree(ac);
  if (!in_callback && !connected && ac_ == ac) {
    onGone(drop_reason_);
  }
}

void RedisConnection::onDisconnectC(const redisAsyncContext* ac, int status) {
  (void)status;
  RedisConnection* self = owner(ac);
  if (self == nullptr || self->ac_ != ac) {
    return;
  }
  std::string why = !self->drop_reason_.empty()        ? self->drop_reason_
                    : ac->err != 0 && ac->errstr != nullptr ? std::string(ac->errstr)
                                                        : std::string("disconnected");
  self->onGone(why);
}

void RedisConnection::onGone(std::string_view why) {
  bool was_ready = state_ == State::Ready;
  bool closed = state_ == State::Closed;
  ac_ = nullptr;
  drop_reason_.clear();
  loop_.cancelTimer(ready_timer_);
  loop_.cancelTimer(timeout_timer_);
  ready_timer_ = timeout_timer_ = 0;
  if (closed) {
    return;
  }
  state_ = State::Idle;
  attempts_++;
  uint64_t suppressed = 0;
  if (was_ready && lost_log_.allow(monotonicUs(), suppressed)) {
    LogLine(LogLevel::Warn, "redis connection lost")
        .str("conn", name_)
        .str("redis", endpoint_.display())
        .str("error", why)
        .unum("suppressed", suppressed);
  } else {
    LogLine(LogLevel::Debug, "redis connect failed")
        .str("conn", name_)
        .str("error", why)
        .unum("attempt", attempts_)
        .unum("retry_ms", backoff_ms_);
  }
  if (on_down_) {
    on_down_(why, was_ready);
  }
  if (state_ == State::Idle && reconnect_timer_ == 0) {
    reconnect_timer_ = loop_.addTimer(backoff_ms_, [this]() { connect(); });
    backoff_ms_ = std::min(backoff_ms_ * 2, kBackoffMaxMs);
  }
}

} // namespace sark
