#pragma once

// One PostgreSQL connection driven by the EventLoop through libpq's
// non-blocking API: PQconnectStartParams + PQconnectPoll (the socket is
// watched for whatever the poll asks; it may change between polls, so it
// is re-registered on every step), then PQsetnonblocking, PQsendQuery and
// PQconsumeInput / PQisBusy / PQgetResult as the socket becomes readable,
// PQflush while output is pending.
//
// - Simple query protocol only: a query may hold several statements, and
//   at most one COPY ... FROM STDIN, whose data is given with the query and
//   streamed with PQputCopyData / PQputCopyEnd (a 0 return = buffers full:
//   wait for the socket to be writable, then go on).
// - One query at a time.  Each has a deadline; a query that misses it
//   drops the connection (the server is stalled or unreachable).
// - Reconnects by itself (100 ms doubling to 5 s) until close().
// - Server notices go to the log, never to stderr.

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/event_loop.h"
#include "core/log.h"

namespace sark {

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// "user@host:port/dbname" from a conninfo string or URL, for logs (never
// the password).
std::string pgDisplayName(const std::string& conninfo);

class PgConnection {
public:
  // The results of one query string, one per statement run, in order.
  struct Outcome {
    bool ok{false};          // every statement succeeded
    bool conn_lost{false};   // no complete answer: connection lost or timed out
    std::string error;       // first error ("SQLSTATE: message") when !ok
    std::string sqlstate;    // its SQLSTATE, empty for connection errors
    std::vector<PgResultPtr> results;
  };
  using QueryCallback = std::function<void(Outcome& outcome)>;
  using ReadyCallback = std::function<void()>;
  // After a lost connection or a failed attempt (`was_ready` tells which).
  using DownCallback = std::function<void(std::string_view why, bool was_ready)>;

  // `conninfo` is a key=value string or a postgresql:// URL, passed to
  // libpq as is.  `display` names the server in logs.
  PgConnection(EventLoop& loop, std::string conninfo, std::string display,
               uint32_t connect_timeout_ms, std::string name);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  void setCallbacks(ReadyCallback on_ready, DownCallback on_down) {
    on_ready_ = std::move(on_ready);
    on_down_ = std::move(on_down);
  }

  void start();
  // Closes the connection; a query in flight is dropped (its callback is
  // not called).
  void close();

  // Connected and no query in flight.
  bool ready() const { return state_ == State::Ready; }
  bool connected() const { return state_ == State::Ready || state_ == State::Busy; }
  // PQtransactionStatus of a connected connection (PQTRANS_UNKNOWN if not).
  PGTransactionStatusType transactionStatus() const;
  const std::string& name() const { return name_; }

  // Sends `sql`; `copy_data` feeds its COPY ... FROM STDIN, if any.  False
  // (and `cb` is never called) when not ready().  Otherwise `cb` runs
  // exactly once, from the loop (never from inside query()); after a
  // failure that left the connection usable, the caller ends any open
  // transaction (see transactionStatus()).
  bool query(std::string sql, std::string copy_data, uint64_t timeout_ms, QueryCallback cb);

private:
  enum class State { Idle, Connecting, Ready, Busy, Closed };

  static void onNoticeC(void* arg, const PGresult* res);

  void connect();
  void continueConnect();
  void watch(uint32_t events);
  void onFdEvent(uint64_t gen, uint32_t events);
  void becomeReady();
  // Runs the query as far as it can without blocking.
  void advance();
  // Sends the next piece of COPY data (or the end of it).  False when the
  // connection was dropped.
  bool pushCopy();
  void finish();
  // Closes the connection; a query in flight fails; reconnects later.
  void fail(std::string why);
  std::string connError() const;

  EventLoop& loop_;
  std::string conninfo_;
  std::string display_;
  uint32_t connect_timeout_ms_;
  std::string name_;
  ReadyCallback on_ready_;
  DownCallback on_down_;

  PgConnPtr conn_;
  State state_{State::Idle};
  int fd_{-1};
  uint32_t interest_{0};
  uint64_t gen_{0}; // bumped per connection, so stale events are ignored

  // The query in flight.
  enum class Copy { None, Sending, Ending };
  QueryCallback cb_;
  Outcome outcome_;
  std::string copy_data_;
  size_t copy_off_{0};
  Copy copy_{Copy::None};
  bool flushing_{false}; // output is pending: wait for the socket to be writable

  EventLoop::TimerId deadline_timer_{0};
  EventLoop::TimerId reconnect_timer_{0};
  EventLoop::TimerId fail_timer_{0};
  uint64_t backoff_ms_;
  uint64_t attempts_{0};
  LogRateLimiter lost_log_{10 * 1000000};
  LogRateLimiter notice_log_{1000000};
};

} // namespace sark
