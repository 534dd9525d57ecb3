#include "core/event_loop.h"

#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "core/log.h"

namespace sark {
namespace {

constexpr int kMaxEvents = 256;

uint64_t packData(int fd, uint32_t gen) {
  return (static_cast<uint64_t>(gen) << 32) | static_cast<uint32_t>(fd);
}

} // namespace

bool EventLoop::init(std::string& err) {
  epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) {
    err = std::string("epoll_create1: ") + strerror(errno);
    return false;
  }
  return true;
}

bool EventLoop::addFd(int fd, uint32_t events, FdCallback cb) {
  if (auto it = watchers_.find(fd); it != watchers_.end()) {
    // The fd number was closed and reused without removeFd (closing an fd
    // drops it from epoll by itself): retire the stale watcher.
    epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
    retired_.push_back(std::move(it->second));
    watchers_.erase(it);
  }
  auto w = std::make_unique<Watcher>();
  w->fd = fd;
  w->gen = next_gen_++;
  if (next_gen_ == 0) {
    next_gen_ = 1;
  }
  w->cb = std::move(cb);
  struct epoll_event ev {};
  ev.events = events;
  ev.data.u64 = packData(fd, w->gen);
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    LogLine(LogLevel::Error, "epoll_ctl add failed").num("fd", fd).str("error", strerror(errno));
    return false;
  }
  watchers_.emplace(fd, std::move(w));
  return true;
}

bool EventLoop::modifyFd(int fd, uint32_t events) {
  auto it = watchers_.find(fd);
  if (it == watchers_.end()) {
    return false;
  }
  struct epoll_event ev {};
  ev.events = events;
  ev.data.u64 = packData(fd, it->second->gen);
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    LogLine(LogLevel::Error, "epoll_ctl mod failed").num("fd", fd).str("error", strerror(errno));
    return false;
  }
  return true;
}

void EventLoop::removeFd(int fd) {
  auto it = watchers_.find(fd);
  if (it == watchers_.end()) {
    return;
  }
  // EBADF when the owner already closed the fd; that is fine.
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  retired_.push_back(std::move(it->second));
  watchers_.erase(it);
}

EventLoop::TimerId EventLoop::addTimer(uint64_t delay_ms, TimerCallback cb) {
  TimerId id = next_timer_id_++;
  uint64_t deadline = monotonicUs() + delay_ms * 1000;
  timers_.emplace(id, Timer{deadline, std::move(cb)});
  timer_order_.emplace(deadline, id);
  return id;
}

void EventLoop::cancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) {
    return;
  }
  timer_order_.erase({it->second.deadline_us, id});
  timers_.erase(it);
}

void EventLoop::addBeforeSleep(std::function<void()> hook) {
  before_sleep_.push_back(std::move(hook));
}

int EventLoop::computeTimeoutMs() const {
  if (timer_order_.empty()) {
    return -1;
  }
  uint64_t now = monotonicUs();
  uint64_t deadline = timer_order_.begin()->first;
  if (deadline <= now) {
    return 0;
  }
  // Round up so we never wake before the deadline and spin.
  uint64_t ms = (deadline - now + 999) / 1000;
  return ms > 60000 ? 60000 : static_cast<int>(ms);
}

void EventLoop::runTimers() {
  uint64_t now = monotonicUs();
  due_.clear();
  for (const auto& [deadline, id] : timer_order_) {
    if (deadline > now) {
      break;
    }
    due_.push_back(id);
  }
  // A callback may cancel a later due timer, or add new ones (those wait
  // for the next round even with 0 ms).
  for (TimerId id : due_) {
    auto node = timers_.extract(id);
    if (node.empty()) {
      continue;
    }
    timer_order_.erase({node.mapped().deadline_us, id});
    node.mapped().cb();
  }
}

void EventLoop::run() {
  struct epoll_event events[kMaxEvents];
  while (!stopped_) {
    for (auto& hook : before_sleep_) {
      hook();
    }
    if (stopped_) {
      break;
    }
    int n = epoll_wait(epfd_.get(), events, kMaxEvents, computeTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      LogLine(LogLevel::Error, "epoll_wait failed").str("error", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      int fd = static_cast<int>(static_cast<uint32_t>(events[i].data.u64));
      auto gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
      auto it = watchers_.find(fd);
      if (it == watchers_.end() || it->second->gen != gen) {
        continue;
      }
      // Keep the callback alive even if it removes its own watcher.
      Watcher* w = it->second.get();
      w->cb(events[i].events);
    }
    retired_.clear();
    runTimers();
    retired_.clear();
  }
}

} // namespace sark
