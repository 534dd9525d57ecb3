#pragma once

// A small single-threaded epoll loop: fd watchers with read/write
// callbacks, one-shot timers (an ordered set polled through the
// epoll_wait timeout) and before-sleep hooks.  Everything in sarkd (module
// connections, libcurl sockets, signals, and later Redis and PostgreSQL
// clients) is a client of this loop.
//
// Callbacks may add or remove any watcher or timer, including their own:
// removed watchers are destroyed only after the current batch of events.

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/handles.h"

namespace sark {

class EventLoop {
public:
  using FdCallback = std::function<void(uint32_t events)>;
  using TimerCallback = std::function<void()>;
  using TimerId = uint64_t; // 0 is never a valid id

  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  bool init(std::string& err);

  // `events` is a mask of EPOLLIN / EPOLLOUT (level-triggered).  The
  // callback receives the epoll event mask (may include EPOLLERR/EPOLLHUP).
  bool addFd(int fd, uint32_t events, FdCallback cb);
  bool modifyFd(int fd, uint32_t events);
  void removeFd(int fd);
  bool watching(int fd) const { return watchers_.count(fd) != 0; }

  TimerId addTimer(uint64_t delay_ms, TimerCallback cb);
  void cancelTimer(TimerId id);

  // Runs before every epoll_wait (flush batched output, check for drain).
  void addBeforeSleep(std::function<void()> hook);

  void run();
  void stop() { stopped_ = true; }

private:
  struct Watcher {
    int fd;
    uint32_t gen;
    FdCallback cb;
  };
  struct Timer {
    uint64_t deadline_us;
    TimerCallback cb;
  };

  int computeTimeoutMs() const;
  void runTimers();

  UniqueFd epfd_;
  bool stopped_{false};
  uint32_t next_gen_{1};
  std::unordered_map<int, std::unique_ptr<Watcher>> watchers_;
  std::vector<std::unique_ptr<Watcher>> retired_;
  TimerId next_timer_id_{1};
  std::set<std::pair<uint64_t, TimerId>> timer_order_;
  std::unordered_map<TimerId, Timer> timers_;
  std::vector<TimerId> due_;
  std::vector<std::function<void()>> before_sleep_;
};

} // namespace sark
