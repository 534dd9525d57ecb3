#include "cache/invalidator.h"

#include <sys/random.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/json_util.h"

namespace sark {
namespace {

constexpr size_t kMaxPattern = 4096;
// Invalidations carried out at the same time; more are applied on this
// host only (status 1) so a runaway client cannot pile up Redis scans.
constexpr size_t kMaxOps = 64;
constexpr const char* kScanCount = "1000";

std::string makeHostId() {
  char name[256];
  if (gethostname(name, sizeof(name)) != 0) {
    strcpy(name, "unknown");
  }
  name[sizeof(name) - 1] = '\0';
  uint32_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != static_cast<ssize_t>(sizeof(nonce))) {
    nonce = static_cast<uint32_t>(monotonicUs());
  }
  char tail[32];
  snprintf(tail, sizeof(tail), ":%d:%08x", static_cast<int>(getpid()), nonce);
  return std::string(name) + tail;
}

bool validPattern(std::string_view p) {
  return !p.empty() && p.size() <= kMaxPattern && p.starts_with("authz:");
}

// Reads a pub/sub JSON message; false when it is not an object.
bool parseMessage(std::string_view text, rapidjson::Document& doc) {
  if (checkJsonObject(text) != JsonObjectCheck::Ok) {
    return false;
  }
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !doc.HasParseError() && doc.IsObject();
}

bool getString(const rapidjson::Document& doc, const char* name, std::string_view& out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd() || !it->value.IsString()) {
    return false;
  }
  out = std::string_view(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool getUint(const rapidjson::Document& doc, const char* name, uint64_t& out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd() || !it->value.IsUint64()) {
    return false;
  }
  out = it->value.GetUint64();
  return true;
}

} // namespace

Invalidator::Invalidator(EventLoop& loop, const Config& cfg, RedisClient& redis,
                         ModuleServer& server, RecentInvalidations& recent, L2Cache& l2)
    : loop_(loop), cfg_(cfg), redis_(redis), server_(server), recent_(recent), l2_(l2),
      seal_(cfg.cache_l2_hmac_key), host_id_(makeHostId()) {}

Invalidator::~Invalidator() { close(); }

void Invalidator::start() {
  if (!cfg_.cache_l2_enabled) {
    return;
  }
  // Whatever the modules cached while this sarkd was not listening may
  // have missed an invalidation.
  applyLocally("authz:*", wallMs(), false, {}, 0);
  subscriber_ = std::make_unique<RedisConnection>(loop_, cfg_.redis, cfg_.redis_timeout_ms,
                                                  "subscriber");
  subscriber_->setSubscriptions({std::string(kInvalidateChannel),
                                 std::string(kInvalidateAckChannel)},
                                [this](const redisReply* r) { onMessage(r); });
  subscriber_->setCallbacks(
      [this]() {
        applyLocally("authz:*", wallMs(), false, {}, 0);
        l2_.setFeedLive(true);
        LogLine(LogLevel::Info, "invalidation feed subscribed")
            .str("channel", kInvalidateChannel)
            .str("host", host_id_);
      },
      [this](std::string_view why, bool was_ready) {
        l2_.setFeedLive(false);
        if (was_ready) {
          LogLine(LogLevel::Warn, "invalidation feed lost; L2 cache off until resubscribed")
              .str("error", why);
        }
      });
  subscriber_->start();
}

void Invalidator::close() {
  if (subscriber_) {
    subscriber_->close();
  }
  l2_.setFeedLive(false);
  for (auto& [id, op] : ops_) {
    loop_.cancelTimer(op->timer);
  }
  ops_.clear();
  unanswered_ = 0;
  for (auto& [id, push] : pushes_) {
    loop_.cancelTimer(push.timer);
  }
  pushes_.clear();
}

uint32_t Invalidator::nextPushId() {
  uint32_t id = next_push_id_++;
  if (next_push_id_ == 0) {
    next_push_id_ = 1;
  }
  return id;
}

void Invalidator::answer(uint64_t conn_id, uint32_t frame_id, const InvalidateResult& r) {
  std::string frame;
  encodeInvalidateResponse(frame, frame_id, r);
  server_.sendFrame(conn_id, frame);
}

// ---------------------------------------------------------------- issuing

bool Invalidator::onInvalidateRequest(uint64_t conn_id, uint32_t frame_id,
                                      const uint8_t* payload, size_t len, std::string& err) {
  InvalidateRequest req;
  if (!decodeInvalidateRequest(payload, len, req, err)) {
    return false;
  }
  InvalidateResult r; // status 1: this host only
  if (!req.has_pattern || !validPattern(req.pattern)) {
    LogLine(LogLevel::Warn, "invalidation refused: the pattern must start with \"authz:\"")
        .unum("conn", conn_id)
        .str("pattern", truncateUtf8(req.pattern, 256));
    r.hosts = 0;
    answer(conn_id, frame_id, r);
    return true;
  }
  uint64_t now = wallMs();
  uint64_t issued_at =
      req.issued_at != 0 ? std::min(req.issued_at, now + SARK_INVALIDATION_SKEW_MS) : now;
  recent_.record(req.pattern, issued_at, now);
  stats_.issued++;

  if (!cfg_.cache_l2_enabled) {
    r.status = 0; // no L2 and no other hosts to tell
    stats_.confirmed++;
    answer(conn_id, frame_id, r);
    return true;
  }
  if (!l2_.feedLive() || !redis_.usable() || ops_.size() >= kMaxOps) {
    stats_.partial++;
    LogLine(LogLevel::Warn, "cache invalidated on this host only")
        .str("pattern", truncateUtf8(req.pattern, 256))
        .str("reason", ops_.size() >= kMaxOps ? "too many invalidations in progress"
                                              : "redis unavailable");
    answer(conn_id, frame_id, r);
    return true;
  }

  auto op = std::make_unique<Op>();
  op->id = next_op_id_++;
  op->conn_id = conn_id;
  op->frame_id = frame_id;
  op->pattern.assign(req.pattern);
  op->issued_at = issued_at;
  op->started_us = monotonicUs();
  uint64_t id = op->id;
  op->timer = loop_.addTimer(cfg_.cache_invalidate_timeout_ms, [this, id]() {
    auto it = ops_.find(id);
    if (it == ops_.end()) {
      return;
    }
    it->second->timer = 0;
    finish(*it->second);
    maybeErase(id);
  });
  Op& ref = *op;
  ops_.emplace(id, std::move(op));
  unanswered_++;
  publish(ref);
  scan(id, "0");
  check(id);
  maybeErase(id);
  return true;
}

void Invalidator::publish(Op& op) {
  std::string msg;
  StringOutStream os(msg);
  JsonWriter w(os);
  w.StartObject();
  w.Key("pattern");
  bool ok = w.String(op.pattern.data(), static_cast<rapidjson::SizeType>(op.pattern.size()));
  w.Key("issued_at");
  w.Uint64(op.issued_at);
  w.Key("origin");
  w.String(host_id_.data(), static_cast<rapidjson::SizeType>(host_id_.size()));
  w.Key("id");
  w.Uint64(op.id);
  w.EndObject();
  uint64_t id = op.id;
  std::string sealed;
  ok = ok && seal_.seal(kInvalidateChannel, msg, sealed);
  bool sent = ok && redis_.command(kInvalidateChannel, {"PUBLISH", kInvalidateChannel, sealed},
                                   [this, id](const redisReply* r) {
                                     auto it = ops_.find(id);
                                     if (it == ops_.end()) {
                                       return;
                                     }
                                     Op& o = *it->second;
                                     if (r != nullptr && r->type == REDIS_REPLY_INTEGER &&
                                         r->integer >= 0) {
                                       o.published = true;
                                       o.subscribers = static_cast<uint32_t>(r->integer);
                                     } else {
                                       o.publish_failed = true;
                                     }
                                     check(id);
                                     maybeErase(id);
                                   });
  if (!sent) {
    op.publish_failed = true;
  }
}

void Invalidator::scan(uint64_t op_id, std::string cursor) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) {
    return;
  }
  Op& op = *it->second;
  bool sent = redis_.command(
      op.pattern, {"SCAN", cursor, "MATCH", op.pattern, "COUNT", kScanCount},
      [this, op_id](const redisReply* r) {
        auto found = ops_.find(op_id);
        if (found == ops_.end()) {
          return;
        }
        Op& o = *found->second;
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            replyText(r->element[0]).empty() || r->element[1]->type != REDIS_REPLY_ARRAY) {
          o.scan_failed = true;
          o.scan_done = true;
          check(op_id);
          maybeErase(op_id);
          return;
        }
        const redisReply* keys = r->element[1];
        if (keys->elements > 0) {
          std::vector<std::string_view> argv{"UNLINK"};
          argv.reserve(keys->elements + 1);
          for (size_t i = 0; i < keys->elements; i++) {
            std::string_view k = replyText(keys->element[i]);
            if (!k.empty()) {
              argv.push_back(k);
            }
          }
          bool unlinking =
              argv.size() > 1 &&
              redis_.command(o.pattern, argv, [this, op_id](const redisReply* u) {
                auto f = ops_.find(op_id);
                if (f == ops_.end()) {
                  return;
                }
                Op& oo = *f->second;
                oo.unlinks_in_flight--;
                if (u != nullptr && u->type == REDIS_REPLY_INTEGER && u->integer > 0) {
                  oo.deleted += static_cast<uint32_t>(u->integer);
                } else if (u == nullptr) {
                  oo.scan_failed = true;
                }
                check(op_id);
                maybeErase(op_id);
              });
          if (unlinking) {
            o.unlinks_in_flight++;
          } else if (argv.size() > 1) {
            o.scan_failed = true;
          }
        }
        std::string next(replyText(r->element[0]));
        if (next == "0" || o.scan_failed) {
          o.scan_done = true;
          check(op_id);
          maybeErase(op_id);
          return;
        }
        scan(op_id, std::move(next));
      });
  if (!sent) {
    op.scan_failed = true;
    op.scan_done = true;
    check(op_id);
    maybeErase(op_id);
  }
}

void Invalidator::check(uint64_t op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end() || it->second->answered) {
    return;
  }
  Op& op = *it->second;
  bool hosts_settled =
      op.publish_failed || (op.published && op.acked_by.size() + 1 >= op.subscribers);
  bool l2_settled = op.scan_done && op.unlinks_in_flight == 0;
  if (hosts_settled && l2_settled) {
    finish(op);
  }
}

void Invalidator::finish(Op& op) {
  if (op.answered) {
    return;
  }
  op.answered = true;
  unanswered_--;
  loop_.cancelTimer(op.timer);
  op.timer = 0;
  InvalidateResult r;
  r.l2_deleted = op.deleted;
  r.hosts = static_cast<uint32_t>(op.acked_by.size()) + 1;
  r.hosts_expected = op.published && op.subscribers > 0 ? op.subscribers : 1;
  bool all_hosts = op.published && r.hosts >= r.hosts_expected;
  r.status = all_hosts && !op.scan_failed ? 0 : 1;
  (r.status == 0 ? stats_.confirmed : stats_.partial)++;
  answer(op.conn_id, op.frame_id, r);
  LogLine(r.status == 0 ? LogLevel::Info : LogLevel::Warn, "cache invalidated")
      .str("pattern", truncateUtf8(op.pattern, 256))
      .unum("issued_at", op.issued_at)
      .unum("hosts", r.hosts)
      .unum("hosts_expected", r.hosts_expected)
      .unum("l2_deleted", r.l2_deleted)
      .boolean("l2_scan_complete", op.scan_done && op.unlinks_in_flight == 0 && !op.scan_failed)
      .unum("status", r.status)
      .unum("ms", (monotonicUs() - op.started_us) / 1000);
}

void Invalidator::maybeErase(uint64_t op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) {
    return;
  }
  const Op& op = *it->second;
  if (op.answered && op.scan_done && op.unlinks_in_flight == 0) {
    ops_.erase(it);
  }
}

// ---------------------------------------------------------------- receiving

void Invalidator::onMessage(const redisReply* r) {
  std::string_view channel;
  std::string_view payload;
  ChannelSeal::Received got = seal_.receive(r, channel, payload);
  if (got == ChannelSeal::Received::Other) {
    return;
  }
  if (got == ChannelSeal::Received::Unsealed) {
    uint64_t suppressed = 0;
    if (bad_message_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "ignoring a message that is not sealed with CACHE_L2_HMAC_KEY")
          .str("channel", truncateUtf8(channel, 64))
          .unum("suppressed", suppressed);
    }
    return;
  }
  if (channel == kInvalidateChannel) {
    onRemoteInvalidate(payload);
  } else if (channel == kInvalidateAckChannel) {
    onRemoteAck(payload);
  }
}

void Invalidator::onRemoteInvalidate(std::string_view payload) {
  rapidjson::Document doc;
  std::string_view pattern;
  std::string_view origin;
  uint64_t issued_at = 0;
  uint64_t id = 0;
  if (!parseMessage(payload, doc) || !getString(doc, "pattern", pattern) ||
      !getString(doc, "origin", origin) || !getUint(doc, "issued_at", issued_at) ||
      !getUint(doc, "id", id) || !validPattern(pattern)) {
    uint64_t suppressed = 0;
    if (bad_message_log_.allow(monotonicUs(), suppressed)) {
      LogLine(LogLevel::Warn, "ignoring a malformed invalidation message")
          .str("message", truncateUtf8(payload, 256))
          .unum("suppressed", suppressed);
    }
    return;
  }
  if (origin == host_id_) {
    return; // our own, already applied
  }
  // A time ahead of ours by more than the skew allowance would keep every
  // matching decision stale until then (a writer of Redis could switch
  // caching off for years): it counts as now.
  uint64_t latest = wallMs() + SARK_INVALIDATION_SKEW_MS;
  if (issued_at > latest) {
    LogLine(LogLevel::Warn, "an invalidation issued in the future counts as issued now")
        .str("origin", truncateUtf8(origin, 64))
        .unum("issued_at", issued_at);
    issued_at = latest;
  }
  stats_.received++;
  LogLine(LogLevel::Info, "cache invalidation from another host")
      .str("pattern", truncateUtf8(pattern, 256))
      .str("origin", origin)
      .unum("issued_at", issued_at);
  applyLocally(pattern, issued_at, true, std::string(origin), id);
}

void Invalidator::applyLocally(std::string_view pattern, uint64_t issued_at, bool track,
                               const std::string& origin, uint64_t op_id) {
  recent_.record(pattern, issued_at, wallMs());
  uint32_t push_id = nextPushId();
  std::string frame;
  encodeInvalidate(frame, push_id, pattern, issued_at);
  size_t modules = server_.broadcast(frame);
  if (!track) {
    return;
  }
  if (modules == 0) {
    publishAck(origin, op_id); // no L1 here to clear
    return;
  }
  EventLoop::TimerId timer = loop_.addTimer(cfg_.cache_invalidate_timeout_ms, [this, push_id]() {
    auto it = pushes_.find(push_id);
    if (it == pushes_.end()) {
      return;
    }
    LogLine(LogLevel::Warn, "no module acknowledged an invalidation in time")
        .str("origin", it->second.origin)
        .unum("push", push_id);
    pushes_.erase(it);
  });
  pushes_[push_id] = Push{origin, op_id, timer};
}

void Invalidator::onAck(uint64_t conn_id, uint32_t push_id) {
  auto it = pushes_.find(push_id);
  if (it == pushes_.end()) {
    return; // a replayed pattern, or a second worker of the same nginx
  }
  LogLine(LogLevel::Debug, "invalidation acknowledged by a module")
      .unum("conn", conn_id)
      .unum("push", push_id);
  loop_.cancelTimer(it->second.timer);
  Push push = std::move(it->second);
  pushes_.erase(it);
  publishAck(push.origin, push.op_id);
}

void Invalidator::publishAck(const std::string& origin, uint64_t op_id) {
  std::string msg;
  StringOutStream os(msg);
  JsonWriter w(os);
  w.StartObject();
  w.Key("id");
  w.Uint64(op_id);
  w.Key("origin");
  bool ok = w.String(origin.data(), static_cast<rapidjson::SizeType>(origin.size()));
  w.Key("host");
  w.String(host_id_.data(), static_cast<rapidjson::SizeType>(host_id_.size()));
  w.EndObject();
  std::string sealed;
  ok = ok && seal_.seal(kInvalidateAckChannel, msg, sealed);
  bool sent = ok && redis_.command(kInvalidateAckChannel, {"PUBLISH", kInvalidateAckChannel, sealed},
                                   [](const redisReply*) {});
  if (!sent) {
    LogLine(LogLevel::Warn, "cannot acknowledge an invalidation: redis unavailable")
        .str("origin", origin);
  }
}

void Invalidator::onRemoteAck(std::string_view payload) {
  rapidjson::Document doc;
  std::string_view origin;
  std::string_view host;
  uint64_t id = 0;
  if (!parseMessage(payload, doc) || !getString(doc, "origin", origin) ||
      !getString(doc, "host", host) || !getUint(doc, "id", id)) {
    return;
  }
  if (origin != host_id_) {
    return; // someone else's invalidation
  }
  auto it = ops_.find(id);
  if (it == ops_.end() || it->second->answered) {
    return;
  }
  it->second->acked_by.emplace(host);
  check(id);
  maybeErase(id);
}

void Invalidator::onModuleConnected(uint64_t conn_id) {
  std::string frames;
  for (const auto& e : recent_.snapshot(wallMs())) {
    encodeInvalidate(frames, nextPushId(), e.pattern, e.issued_at);
  }
  if (!frames.empty()) {
    server_.sendFrame(conn_id, frames);
  }
}

} // namespace sark
