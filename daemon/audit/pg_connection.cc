#include "audit/pg_connection.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/clock.h"

namespace sark {
namespace {

constexpr uint64_t kBackoffMinMs = 100;
constexpr uint64_t kBackoffMaxMs = 5000;
// COPY data goes out in pieces of this size; after each, libpq's buffer
// is flushed, so it never holds much more than one piece.
constexpr size_t kCopyChunk = 64 * 1024;

// libpq's messages end in a newline and may span lines ("...\n\tHint").
std::string oneLine(const char* msg) {
  std::string s;
  bool space = false;
  for (const char* p = msg != nullptr ? msg : ""; *p != '\0'; p++) {
    if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
      space = !s.empty();
      continue;
    }
    if (space) {
      s += ' ';
      space = false;
    }
    s += *p;
  }
  return s;
}

std::string field(const PGresult* res, int code) {
  const char* v = PQresultErrorField(res, code);
  return v != nullptr ? v : "";
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

} // namespace

std::string pgDisplayName(const std::string& conninfo) {
  char* errmsg = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> opts(
      PQconninfoParse(conninfo.c_str(), &errmsg));
  if (errmsg != nullptr) {
    PQfreemem(errmsg);
  }
  if (!opts) {
    return "(unparsable DATABASE_URL)";
  }
  std::string user, host, port, db;
  for (const PQconninfoOption* o = opts.get(); o->keyword != nullptr; o++) {
    if (o->val == nullptr || o->val[0] == '\0') {
      continue;
    }
    if (strcmp(o->keyword, "user") == 0) {
      user = o->val;
    } else if (strcmp(o->keyword, "host") == 0) {
      host = o->val;
    } else if (strcmp(o->keyword, "hostaddr") == 0 && host.empty()) {
      host = o->val;
    } else if (strcmp(o->keyword, "port") == 0) {
      port = o->val;
    } else if (strcmp(o->keyword, "dbname") == 0) {
      db = o->val;
    }
  }
  std::string out = "postgresql://";
  if (!user.empty()) {
    out += user + "@";
  }
  out += host.empty() ? "(default host)" : host;
  if (!port.empty()) {
    out += ":" + port;
  }
  if (!db.empty()) {
    out += "/" + db;
  }
  return out;
}

PgConnection::PgConnection(EventLoop& loop, std::string conninfo, std::string display,
                           uint32_t connect_timeout_ms, std::string name)
    : loop_(loop), conninfo_(std::move(conninfo)), display_(std::move(display)),
      connect_timeout_ms_(connect_timeout_ms), name_(std::move(name)),
      backoff_ms_(kBackoffMinMs) {}

PgConnection::~PgConnection() { close(); }

void PgConnection::start() {
  if (state_ == State::Idle && !conn_ && reconnect_timer_ == 0) {
    connect();
  }
}

void PgConnection::close() {
  if (state_ == State::Closed) {
    return;
  }
  state_ = State::Closed;
  gen_++;
  loop_.cancelTimer(reconnect_timer_);
  loop_.cancelTimer(deadline_timer_);
  loop_.cancelTimer(fail_timer_);
  reconnect_timer_ = deadline_timer_ = fail_timer_ = 0;
  if (fd_ >= 0) {
    loop_.removeFd(fd_);
    fd_ = -1;
  }
  conn_.reset();
  cb_ = nullptr;
  outcome_ = Outcome{};
  copy_data_.clear();
  copy_ = Copy::None;
}

PGTransactionStatusType PgConnection::transactionStatus() const {
  return conn_ && connected() ? PQtransactionStatus(conn_.get()) : PQTRANS_UNKNOWN;
}

std::string PgConnection::connError() const {
  std::string s = conn_ ? oneLine(PQerrorMessage(conn_.get())) : std::string();
  return s.empty() ? "connection failed" : s;
}

// ---------------------------------------------------------------- connect

void PgConnection::connect() {
  reconnect_timer_ = 0;
  if (state_ == State::Closed) {
    return;
  }
  gen_++;
  state_ = State::Connecting;
  // The whole setting goes in as "dbname" with expand_dbname, which is how
  // libpq reads a conninfo string or URL; the application name is only a
  // fallback so the setting can override it.  Note: a host name is
  // resolved with a blocking getaddrinfo(); use an address for DATABASE_URL
  // where that matters.
  const char* const keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* const values[] = {conninfo_.c_str(), "sarkd", nullptr};
  conn_.reset(PQconnectStartParams(keys, values, 1));
  if (!conn_) {
    fail("out of memory");
    return;
  }
  if (PQstatus(conn_.get()) == CONNECTION_BAD) {
    fail(connError());
    return;
  }
  PQsetNoticeReceiver(conn_.get(), &PgConnection::onNoticeC, this);
  uint64_t gen = gen_;
  deadline_timer_ = loop_.addTimer(connect_timeout_ms_, [this, gen]() {
    deadline_timer_ = 0;
    if (gen == gen_ && state_ == State::Connecting) {
      fail("not connected after " + std::to_string(connect_timeout_ms_) + " ms");
    }
  });
  // Before the first PQconnectPoll, wait as if it had asked for writing.
  watch(EPOLLOUT);
}

// (Re)registers the current socket.  During the connection sequence libpq
// may close its socket and open another (next host, SSL retry), possibly
// under the same number, so it is registered afresh on every step.
void PgConnection::watch(uint32_t events) {
  if (fd_ >= 0) {
    loop_.removeFd(fd_);
    fd_ = -1;
  }
  int fd = PQsocket(conn_.get());
  uint64_t gen = gen_;
  if (fd < 0 || !loop_.addFd(fd, events, [this, gen](uint32_t ev) { onFdEvent(gen, ev); })) {
    interest_ = 0;
    fail(fd < 0 ? "no socket" : "cannot watch the socket");
    return;
  }
  fd_ = fd;
  interest_ = events;
}

void PgConnection::continueConnect() {
  switch (PQconnectPoll(conn_.get())) {
  case PGRES_POLLING_READING:
    watch(EPOLLIN);
    return;
  case PGRES_POLLING_WRITING:
    watch(EPOLLOUT);
    return;
  case PGRES_POLLING_OK:
    becomeReady();
    return;
  default:
    fail(connError());
    return;
  }
}

void PgConnection::becomeReady() {
  loop_.cancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  if (PQsetnonblocking(conn_.get(), 1) != 0) {
    fail("PQsetnonblocking: " + connError());
    return;
  }
  watch(EPOLLIN); // the server may close an idle connection, or send notices
  if (state_ != State::Connecting) {
    return;
  }
  state_ = State::Ready;
  flushing_ = false;
  LogLine(LogLevel::Info, "postgresql connected")
      .str("conn", name_)
      .str("database", display_)
      .num("server_version", PQserverVersion(conn_.get()))
      .unum("failed_attempts", attempts_);
  backoff_ms_ = kBackoffMinMs;
  attempts_ = 0;
  if (on_ready_) {
    on_ready_();
  }
}

void PgConnection::onNoticeC(void* arg, const PGresult* res) {
  auto* self = static_cast<PgConnection*>(arg);
  std::string severity = field(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  bool serious = severity != "NOTICE" && severity != "DEBUG" && severity != "LOG" &&
                 severity != "INFO";
  uint64_t suppressed = 0;
  if (serious && !self->notice_log_.allow(monotonicUs(), suppressed)) {
    return;
  }
  LogLine(serious ? LogLevel::Warn : LogLevel::Debug, "postgresql notice")
      .str("conn", self->name_)
      .str("severity", severity)
      .str("message", oneLine(field(res, PG_DIAG_MESSAGE_PRIMARY).c_str()))
      .unum("suppressed", suppressed);
}

// ---------------------------------------------------------------- queries

bool PgConnection::query(std::string sql, std::string copy_data, uint64_t timeout_ms,
                         QueryCallback cb) {
  if (state_ != State::Ready) {
    return false;
  }
  state_ = State::Busy;
  cb_ = std::move(cb);
  outcome_ = Outcome{};
  copy_data_ = std::move(copy_data);
  copy_off_ = 0;
  copy_ = Copy::None;
  flushing_ = false;
  uint64_t gen = gen_;
  deadline_timer_ = loop_.addTimer(timeout_ms, [this, gen, timeout_ms]() {
    deadline_timer_ = 0;
    if (gen == gen_ && state_ == State::Busy) {
      fail("no answer after " + std::to_string(timeout_ms) + " ms");
    }
  });
  int flushed = PQsendQuery(conn_.get(), sql.c_str()) == 1 ? PQflush(conn_.get()) : -1;
  if (flushed < 0) {
    // The connection is broken.  The callback must not run from inside
    // query(): fail from the loop.
    std::string why = connError();
    fail_timer_ = loop_.addTimer(0, [this, gen, why]() {
      fail_timer_ = 0;
      if (gen == gen_ && state_ == State::Busy) {
        fail(why);
      }
    });
    return true;
  }
  flushing_ = flushed > 0;
  uint32_t want = EPOLLIN | (flushing_ ? EPOLLOUT : 0u);
  if (want != interest_ && loop_.modifyFd(fd_, want)) {
    interest_ = want;
  }
  return true;
}

void PgConnection::onFdEvent(uint64_t gen, uint32_t events) {
  if (gen != gen_ || !conn_) {
    return;
  }
  if (state_ == State::Connecting) {
    continueConnect();
    return;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && PQconsumeInput(conn_.get()) == 0) {
    fail(connError());
    return;
  }
  if (state_ == State::Ready) {
    // Nothing is expected while idle but notices (already logged); a
    // hang-up is the server closing the connection.
    if (PQstatus(conn_.get()) == CONNECTION_BAD || (events & (EPOLLERR | EPOLLHUP)) != 0) {
      fail(connError());
    }
    return;
  }
  if (state_ == State::Busy) {
    advance();
  }
}

void PgConnection::advance() {
  uint64_t gen = gen_;
  PGconn* c = conn_.get();
  while (gen == gen_ && state_ == State::Busy) {
    if (flushing_) {
      int r = PQflush(c);
      if (r < 0) {
        fail(connError());
        return;
      }
      if (r > 0) {
        break; // wait for the socket to be writable
      }
      flushing_ = false;
    }
    if (copy_ != Copy::None) {
      if (!pushCopy()) {
        return;
      }
      continue;
    }
    if (PQisBusy(c) != 0) {
      break; // wait for more input
    }
    PgResultPtr res(PQgetResult(c));
    if (!res) {
      finish();
      return;
    }
    ExecStatusType st = PQresultStatus(res.get());
    if (st == PGRES_COPY_IN) {
      copy_ = Copy::Sending;
      continue;
    }
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      fail("unexpected COPY TO STDOUT in a query");
      return;
    }
    if ((st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) && outcome_.error.empty()) {
      outcome_.sqlstate = field(res.get(), PG_DIAG_SQLSTATE);
      outcome_.error = oneLine(PQresultErrorMessage(res.get()));
      std::string primary = field(res.get(), PG_DIAG_MESSAGE_PRIMARY);
      if (!primary.empty()) {
        outcome_.error = outcome_.sqlstate + ": " + oneLine(primary.c_str());
        std::string where = field(res.get(), PG_DIAG_CONTEXT);
        if (!where.empty()) {
          outcome_.error += " (" + oneLine(where.c_str()) + ")";
        }
      }
      if (outcome_.error.empty()) {
        outcome_.error = "query failed";
      }
    }
    outcome_.results.push_back(std::move(res));
  }
  if (gen == gen_ && fd_ >= 0) {
    uint32_t want = EPOLLIN | (flushing_ ? EPOLLOUT : 0u);
    if (want != interest_ && loop_.modifyFd(fd_, want)) {
      interest_ = want;
    }
  }
}

bool PgConnection::pushCopy() {
  PGconn* c = conn_.get();
  int r;
  if (copy_ == Copy::Sending && copy_off_ < copy_data_.size()) {
    size_t n = std::min(kCopyChunk, copy_data_.size() - copy_off_);
    r = PQputCopyData(c, copy_data_.data() + copy_off_, static_cast<int>(n));
    if (r > 0) {
      copy_off_ += n;
    }
  } else {
    copy_ = Copy::Ending;
    r = PQputCopyEnd(c, nullptr);
    if (r > 0) {
      copy_ = Copy::None;
      copy_data_ = std::string();
      copy_off_ = 0;
    }
  }
  if (r < 0) {
    fail(connError());
    return false;
  }
  int f = PQflush(c);
  if (f < 0) {
    fail(connError());
    return false;
  }
  if (r == 0 && f == 0) {
    fail("COPY data could not be queued");
    return false;
  }
  flushing_ = f > 0; // r == 0 (buffers full): retried once they drained
  return true;
}

void PgConnection::finish() {
  loop_.cancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  state_ = State::Ready;
  flushing_ = false;
  copy_ = Copy::None;
  copy_data_ = std::string();
  Outcome outcome = std::move(outcome_);
  outcome_ = Outcome{};
  outcome.ok = outcome.error.empty();
  QueryCallback cb = std::move(cb_);
  cb_ = nullptr;
  if (fd_ >= 0 && interest_ != EPOLLIN && loop_.modifyFd(fd_, EPOLLIN)) {
    interest_ = EPOLLIN;
  }
  if (cb) {
    cb(outcome);
  }
}

// ---------------------------------------------------------------- teardown

void PgConnection::fail(std::string why) {
  if (state_ == State::Closed) {
    return;
  }
  bool was_ready = state_ == State::Ready || state_ == State::Busy;
  gen_++;
  loop_.cancelTimer(deadline_timer_);
  loop_.cancelTimer(fail_timer_);
  deadline_timer_ = fail_timer_ = 0;
  if (fd_ >= 0) {
    loop_.removeFd(fd_);
    fd_ = -1;
  }
  interest_ = 0;
  conn_.reset();
  QueryCallback cb = std::move(cb_);
  cb_ = nullptr;
  Outcome outcome = std::move(outcome_);
  outcome_ = Outcome{};
  copy_data_ = std::string();
  copy_ = Copy::None;
  flushing_ = false;
  state_ = State::Idle;
  attempts_++;
  uint64_t suppressed = 0;
  if (was_ready && lost_log_.allow(monotonicUs(), suppressed)) {
    LogLine(LogLevel::Warn, "postgresql connection lost")
        .str("conn", name_)
        .str("database", display_)
        .str("error", why)
        .unum("suppressed", suppressed);
  } else {
    LogLine(LogLevel::Debug, "postgresql connect failed")
        .str("conn", name_)
        .str("database", display_)
        .str("error", why)
        .unum("attempt", attempts_)
        .unum("retry_ms", backoff_ms_);
  }
  if (cb) {
    outcome.ok = false;
    outcome.conn_lost = true;
    outcome.error = "connection: " + why;
    outcome.sqlstate.clear();
    cb(outcome);
  }
  if (state_ == State::Idle && on_down_) {
    on_down_(why, was_ready);
  }
  if (state_ == State::Idle && reconnect_timer_ == 0) {
    reconnect_timer_ = loop_.addTimer(backoff_ms_, [this]() { connect(); });
    backoff_ms_ = std::min(backoff_ms_ * 2, kBackoffMaxMs);
  }
}

} // namespace sark
