// Unit tests for sarkd's settings (daemon/core/config.cc): VALKEY_URL
// parsing, the REDIS_* fallback, the cache and audit settings' validation,
// the L2 HMAC key and the socket's peer settings.

#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

using sark::Config;
using sark::RedisEndpoint;

namespace {

struct UrlCase {
  const char* url;
  bool ok;
  const char* host;
  unsigned port;
  const char* user;
  const char* password;
  unsigned db;
};

const UrlCase kUrls[] = {
    {"redis://127.0.0.1:6390/0", true, "127.0.0.1", 6390, "", "", 0},
    {"redis://localhost", true, "localhost", 6379, "", "", 0},
    {"redis://h:1/15", true, "h", 1, "", "", 15},
    {"redis://:secret@h:6379/2", true, "h", 6379, "", "secret", 2},
    {"redis://secret@h", true, "h", 6379, "", "secret", 0},
    {"redis://app:p%40ss%3Aw@h:7000/1", true, "h", 7000, "app", "p@ss:w", 1},
    {"valkey://h:6380", true, "h", 6380, "", "", 0},
    {"redis://[::1]:7000/3", true, "::1", 7000, "", "", 3},
    {"redis://h/", true, "h", 6379, "", "", 0},
    {"rediss://h:6379", false, "", 0, "", "", 0},
    {"http://h:6379", false, "", 0, "", "", 0},
    {"redis://", false, "", 0, "", "", 0},
    {"redis://:pw@", false, "", 0, "", "", 0},
    {"redis://h:0", false, "", 0, "", "", 0},
    {"redis://h:65536", false, "", 0, "", "", 0},
    {"redis://h:", false, "", 0, "", "", 0},
    {"redis://h:6379/x", false, "", 0, "", "", 0},
    {"redis://h:6379/0?timeout=1", false, "", 0, "", "", 0},
    {"redis://h x:6379", false, "", 0, "", "", 0},
    {"redis://u:%zz@h", false, "", 0, "", "", 0},
    {"redis://user:@h", false, "", 0, "", "", 0},
    {"redis://[::1:7000", false, "", 0, "", "", 0},
};

// A key for L2 (required while CACHE_L2_ENABLED=true), set for every test
// by main().
const char kTestKey[] = "0123456789abcdef0123456789abcdef-unit";

// Runs loadConfig with `vars` set in the environment (and the previous
// values restored after; the tests may run in one process).
bool load(const std::vector<std::pair<const char*, const char*>>& vars, Config& cfg,
          std::string& err, std::vector<std::string>* notes_out = nullptr) {
  std::vector<std::optional<std::string>> saved;
  for (const auto& [name, value] : vars) {
    const char* old = getenv(name);
    saved.push_back(old != nullptr ? std::optional<std::string>(old) : std::nullopt);
    setenv(name, value, 1);
  }
  std::vector<std::string> notes;
  bool ok = sark::loadConfig(nullptr, cfg, err, notes);
  for (size_t i = vars.size(); i-- > 0;) {
    if (saved[i]) {
      setenv(vars[i].first, saved[i]->c_str(), 1);
    } else {
      unsetenv(vars[i].first);
    }
  }
  if (notes_out != nullptr) {
    *notes_out = std::move(notes);
  }
  return ok;
}

// A file holding `text`, removed by the destructor.
class TempFile {
public:
  TempFile(const std::string& text, mode_t mode) {
    char name[] = "/tmp/check-sarkd-config-XXXXXX";
    int fd = mkstemp(name);
    ck_assert(fd >= 0);
    ck_assert(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ck_assert(fchmod(fd, mode) == 0);
    close(fd);
    path_ = name;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const char* path() const { return path_.c_str(); }

private:
  std::string path_;
};

bool hasNote(const std::vector<std::string>& notes, const char* text) {
  for (const std::string& n : notes) {
    if (n.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string effective(const Config& cfg, const char* name) {
  for (const auto& [n, v] : cfg.effective) {
    if (n == name) {
      return v;
    }
  }
  return "(absent)";
}

} // namespace

START_TEST(test_url) {
  const UrlCase& c = kUrls[_i];
  RedisEndpoint ep;
  std::string why;
  bool ok = sark::parseRedisUrl(c.url, ep, why);
  ck_assert_msg(ok == c.ok, "%s: ok=%d (%s)", c.url, ok, why.c_str());
  if (!ok) {
    ck_assert(!why.empty());
    return;
  }
  ck_assert_str_eq(ep.host.c_str(), c.host);
  ck_assert_uint_eq(ep.port, c.port);
  ck_assert_str_eq(ep.username.c_str(), c.user);
  ck_assert_str_eq(ep.password.c_str(), c.password);
  ck_assert_uint_eq(ep.db, c.db);
}
END_TEST

START_TEST(test_display_hides_password) {
  RedisEndpoint ep;
  std::string why;
  ck_assert(sark::parseRedisUrl("redis://app:hunter2@h:7000/1", ep, why));
  std::string shown = ep.display(); // the macro keeps a pointer: no temporaries
  ck_assert_str_eq(shown.c_str(), "redis://app:***@h:7000/1");
  ck_assert(sark::parseRedisUrl("redis://[::1]", ep, why));
  shown = ep.display();
  ck_assert_str_eq(shown.c_str(), "redis://[::1]:6379/0");
}
END_TEST

START_TEST(test_defaults) {
  Config cfg;
  std::string err;
  ck_assert_msg(load({}, cfg, err), "%s", err.c_str());
  ck_assert(cfg.cache_l2_enabled);
  std::string shown = cfg.redis.display();
  ck_assert_str_eq(shown.c_str(), "redis://127.0.0.1:6379/0");
  ck_assert_uint_eq(cfg.redis_pool_size, 2);
  ck_assert_uint_eq(cfg.redis_timeout_ms, 100);
  ck_assert_uint_eq(cfg.cache_negative_ttl, 5);
  ck_assert_uint_eq(cfg.cache_invalidate_timeout_ms, 1000);
  ck_assert_uint_eq(cfg.redis_cb_threshold, 5);
  ck_assert_uint_eq(cfg.redis_cb_open_ms, 5000);
  ck_assert_uint_eq(cfg.redis_cb_half_open, 1);
  ck_assert_uint_eq(cfg.maxCacheTtlMs(), 300000);
  ck_assert(cfg.database_url.empty());
  ck_assert_uint_eq(cfg.database_pool_size, 2);
  ck_assert_uint_eq(cfg.database_statement_timeout_ms, 5000);
  ck_assert_uint_eq(cfg.audit_batch_size, 5000);
  ck_assert_uint_eq(cfg.audit_flush_interval_ms, 1000);
  ck_assert_uint_eq(cfg.audit_queue_max, 200000);
  ck_assert_str_eq(cfg.audit_spool_dir.c_str(), "run/spool");
  ck_assert_uint_eq(cfg.audit_summary_refresh_ms, 60000);
}
END_TEST

// DATABASE_URL is passed to libpq as given; the start-up log shows it
// without its password, in either form.
START_TEST(test_database_settings) {
  Config cfg;
  std::string err;
  ck_assert_msg(load({{"DATABASE_URL", "postgresql://sark:s3cret@db:5432/sark"},
                      {"AUDIT_FLUSH_INTERVAL_SECONDS", "0.25"},
                      {"AUDIT_SPOOL_DIR", "/var/lib/x"}},
                     cfg, err),
                "%s", err.c_str());
  ck_assert_str_eq(cfg.database_url.c_str(), "postgresql://sark:s3cret@db:5432/sark");
  ck_assert_uint_eq(cfg.audit_flush_interval_ms, 250);
  ck_assert_str_eq(cfg.audit_spool_dir.c_str(), "/var/lib/x");
  for (const auto& [name, value] : cfg.effective) {
    if (name == "DATABASE_URL") {
      ck_assert_msg(value.find("s3cret") == std::string::npos, "%s", value.c_str());
    }
  }
  ck_assert(load({{"DATABASE_URL", "host=db user=sark password=s3cret dbname=sark"}}, cfg, err));
  for (const auto& [name, value] : cfg.effective) {
    if (name == "DATABASE_URL") {
      ck_assert_msg(value.find("s3cret") == std::string::npos, "%s", value.c_str());
    }
  }
}
END_TEST

START_TEST(test_redis_parts) {
  Config cfg;
  std::string err;
  ck_assert_msg(load({{"REDIS_HOST", "10.1.2.3"}, {"REDIS_PORT", "6391"},
                      {"REDIS_PASSWORD", "p@ss"}, {"REDIS_DB", "4"}},
                     cfg, err),
                "%s", err.c_str());
  ck_assert_str_eq(cfg.redis.host.c_str(), "10.1.2.3");
  ck_assert_uint_eq(cfg.redis.port, 6391);
  ck_assert_str_eq(cfg.redis.password.c_str(), "p@ss");
  ck_assert_uint_eq(cfg.redis.db, 4);
  // VALKEY_URL from the same source wins.
  ck_assert(load({{"REDIS_HOST", "10.1.2.3"}, {"VALKEY_URL", "redis://other:1/0"}}, cfg, err));
  ck_assert_str_eq(cfg.redis.host.c_str(), "other");
  ck_assert(!load({{"REDIS_PORT", "0"}}, cfg, err));
  ck_assert(err.find("REDIS_PORT") != std::string::npos);
  ck_assert(!load({{"REDIS_DB", "x"}}, cfg, err));
  ck_assert(err.find("REDIS_DB") != std::string::npos);
}
END_TEST

START_TEST(test_seconds) {
  Config cfg;
  std::string err;
  ck_assert(load({{"VALKEY_SOCKET_TIMEOUT", "0.25"}, {"REDIS_CIRCUIT_BREAKER_TIMEOUT", "30"}}, cfg,
                 err));
  ck_assert_uint_eq(cfg.redis_timeout_ms, 250);
  ck_assert_uint_eq(cfg.redis_cb_open_ms, 30000);
  ck_assert(load({{"VALKEY_SOCKET_TIMEOUT", "0.0001"}}, cfg, err)); // rounds up to 1 ms
  ck_assert_uint_eq(cfg.redis_timeout_ms, 1);
  const char* const bad[] = {"", "0", "-1", "abc", "1e9", ".5", "nan", "inf", "61", "0.1s"};
  for (const char* v : bad) {
    ck_assert_msg(!load({{"VALKEY_SOCKET_TIMEOUT", v}}, cfg, err), "accepted \"%s\"", v);
    ck_assert(err.find("VALKEY_SOCKET_TIMEOUT") != std::string::npos);
  }
}
END_TEST

START_TEST(test_bad_values_name_the_variable) {
  const char* const names[][2] = {
      {"VALKEY_URL", "rediss://h"},
      {"VALKEY_POOL_SIZE", "0"},
      {"CACHE_L2_ENABLED", "maybe"},
      {"CACHE_NEGATIVE_TTL", "-1"},
      {"CACHE_INVALIDATE_TIMEOUT_MS", "0"},
      {"REDIS_CIRCUIT_BREAKER_THRESHOLD", "0"},
      {"REDIS_CIRCUIT_BREAKER_HALF_OPEN", "0"},
      {"DATABASE_POOL_SIZE", "0"},
      {"DATABASE_STATEMENT_TIMEOUT", "soon"},
      {"AUDIT_BATCH_SIZE", "0"},
      {"AUDIT_FLUSH_INTERVAL_SECONDS", "-1"},
      {"AUDIT_QUEUE_MAX", "many"},
      {"AUDIT_SPOOL_DIR", ""},
      {"AUDIT_SUMMARY_REFRESH_SECONDS", "hourly"},
  };
  for (const auto& nv : names) {
    Config cfg;
    std::string err;
    ck_assert_msg(!load({{nv[0], nv[1]}}, cfg, err), "%s=%s accepted", nv[0], nv[1]);
    ck_assert_msg(err.find(nv[0]) != std::string::npos, "%s", err.c_str());
  }
}
END_TEST

// ---------------------------------------------------------------- L2 key

START_TEST(test_l2_key_required_with_l2) {
  Config cfg;
  std::string err;
  ck_assert(!load({{"CACHE_L2_HMAC_KEY", ""}}, cfg, err));
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY") != std::string::npos, "%s", err.c_str());
  // Without L2 no key is needed.
  ck_assert_msg(load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_ENABLED", "false"}}, cfg, err), "%s",
                err.c_str());
  ck_assert(cfg.cache_l2_hmac_key.empty());
}
END_TEST

START_TEST(test_l2_key_given) {
  Config cfg;
  std::string err;
  const std::string key(32, 'k');
  ck_assert_msg(load({{"CACHE_L2_HMAC_KEY", key.c_str()}}, cfg, err), "%s", err.c_str());
  ck_assert(cfg.cache_l2_hmac_key == key);
  // Never shown.  (ck_assert_str_eq keeps a pointer: no temporaries.)
  const std::string shown = effective(cfg, "CACHE_L2_HMAC_KEY");
  ck_assert_str_eq(shown.c_str(), "***");
  const std::string short_key(31, 's');
  ck_assert(!load({{"CACHE_L2_HMAC_KEY", short_key.c_str()}}, cfg, err));
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY") != std::string::npos, "%s", err.c_str());
  ck_assert_msg(err.find(short_key) == std::string::npos, "the key is shown: %s", err.c_str());
  ck_assert_msg(err.find("32") != std::string::npos, "%s", err.c_str());
}
END_TEST

START_TEST(test_l2_key_file) {
  Config cfg;
  std::string err;
  std::vector<std::string> notes;
  const std::string key = "file-key-0123456789abcdef0123456789";
  TempFile good(key + "\n", 0600);
  ck_assert_msg(load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_HMAC_KEY_FILE", good.path()}}, cfg,
                     err, &notes),
                "%s", err.c_str());
  ck_assert_msg(cfg.cache_l2_hmac_key == key, "newline not stripped: %zu bytes",
                cfg.cache_l2_hmac_key.size());
  ck_assert(!hasNote(notes, "readable by every user"));
  TempFile crlf(key + "\r\n", 0600);
  ck_assert(load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_HMAC_KEY_FILE", crlf.path()}}, cfg, err));
  ck_assert(cfg.cache_l2_hmac_key == key);
  // A key file everybody may read is accepted, with a warning.
  TempFile open_file(key, 0644);
  ck_assert(load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_HMAC_KEY_FILE", open_file.path()}}, cfg,
                 err, &notes));
  ck_assert(hasNote(notes, "readable by every user"));
  // Too short once the newline is gone, missing, both given, too long.
  TempFile short_file(std::string(31, 'x') + "\n", 0600);
  ck_assert(!load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_HMAC_KEY_FILE", short_file.path()}},
                  cfg, err));
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY_FILE") != std::string::npos, "%s", err.c_str());
  ck_assert(!load({{"CACHE_L2_HMAC_KEY", ""},
                   {"CACHE_L2_HMAC_KEY_FILE", "/nonexistent/sark/l2.key"}},
                  cfg, err));
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY_FILE") != std::string::npos, "%s", err.c_str());
  ck_assert(!load({{"CACHE_L2_HMAC_KEY_FILE", good.path()}}, cfg, err)); // and the key of main()
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY_FILE") != std::string::npos, "%s", err.c_str());
  TempFile huge(std::string(5000, 'h'), 0600);
  ck_assert(!load({{"CACHE_L2_HMAC_KEY", ""}, {"CACHE_L2_HMAC_KEY_FILE", huge.path()}}, cfg,
                  err));
  ck_assert_msg(err.find("CACHE_L2_HMAC_KEY_FILE") != std::string::npos, "%s", err.c_str());
}
END_TEST

// ---------------------------------------------------------------- peers

START_TEST(test_peer_defaults) {
  Config cfg;
  std::string err;
  ck_assert_msg(load({}, cfg, err), "%s", err.c_str());
  ck_assert_uint_eq(cfg.socket_mode, 0660);
  ck_assert(!cfg.socket_group_set);
  ck_assert(cfg.allowed_uids.empty());
  ck_assert(cfg.allowed_gids.empty());
}
END_TEST

START_TEST(test_peer_lists) {
  struct passwd* root = getpwuid(0);
  struct group* root_group = getgrgid(0);
  ck_assert(root != nullptr && root_group != nullptr);
  const std::string root_name = root->pw_name;
  const std::string root_group_name = root_group->gr_name;
  Config cfg;
  std::string err;
  const std::string uids = " " + root_name + " , 4242,0";
  const std::string gids = root_group_name + ",65534";
  ck_assert_msg(load({{"SARKD_ALLOWED_UIDS", uids.c_str()},
                      {"SARKD_ALLOWED_GIDS", gids.c_str()},
                      {"SARKD_SOCKET_GROUP", root_group_name.c_str()}},
                     cfg, err),
                "%s", err.c_str());
  // names resolved, duplicates dropped, order kept
  ck_assert_uint_eq(cfg.allowed_uids.size(), 2);
  ck_assert_uint_eq(cfg.allowed_uids[0], 0);
  ck_assert_uint_eq(cfg.allowed_uids[1], 4242);
  ck_assert_uint_eq(cfg.allowed_gids.size(), 2);
  ck_assert_uint_eq(cfg.allowed_gids[0], 0);
  ck_assert_uint_eq(cfg.allowed_gids[1], 65534);
  ck_assert(cfg.socket_group_set);
  ck_assert_uint_eq(cfg.socket_group, 0);
  ck_assert(load({{"SARKD_SOCKET_GROUP", "4243"}}, cfg, err));
  ck_assert(cfg.socket_group_set);
  ck_assert_uint_eq(cfg.socket_group, 4243);
}
END_TEST

START_TEST(test_peer_bad_values_name_the_variable) {
  const char* const cases[][2] = {
      {"SARKD_ALLOWED_UIDS", "no-such-user-sark-test"},
      {"SARKD_ALLOWED_UIDS", "0,no-such-user-sark-test"},
      {"SARKD_ALLOWED_UIDS", "0,,1"},
      {"SARKD_ALLOWED_UIDS", "4294967295"},
      {"SARKD_ALLOWED_UIDS", "99999999999"},
      {"SARKD_ALLOWED_GIDS", "no-such-group-sark-test"},
      {"SARKD_ALLOWED_GIDS", ","},
      {"SARKD_SOCKET_GROUP", "no-such-group-sark-test"},
      {"SARKD_SOCKET_GROUP", "-1"},
      {"SARKD_SOCKET_MODE", "0999"},
  };
  for (const auto& nv : cases) {
    Config cfg;
    std::string err;
    ck_assert_msg(!load({{nv[0], nv[1]}}, cfg, err), "%s=%s accepted", nv[0], nv[1]);
    ck_assert_msg(err.find(nv[0]) != std::string::npos, "%s", err.c_str());
  }
}
END_TEST

// An env file with `text` loaded as sarkd --env-file loads it.
bool loadFile(const std::string& text, Config& cfg, std::string& err,
              std::vector<std::string>& notes) {
  TempFile f(text, 0600);
  return sark::loadConfig(f.path(), cfg, err, notes);
}

START_TEST(test_env_file_unknown_name) {
  Config cfg;
  std::string err;
  std::vector<std::string> notes;
  // a misspelt setting must not leave its default in force unnoticed
  ck_assert(!loadFile("AUDIT_BATCH_SIZE=100\nAUDIT_BATCH_SZIE=100\n", cfg, err, notes));
  ck_assert_msg(err.find("AUDIT_BATCH_SZIE is not a sarkd setting") != std::string::npos, "%s",
                err.c_str());
  ck_assert(!loadFile("FOO=1\n", cfg, err, notes));
  ck_assert(err.find("FOO") != std::string::npos);
  // every setting conf/sarkd.env names is known
  notes.clear();
  ck_assert_msg(loadFile("AUDIT_BATCH_SIZE=100\nDATABASE_READ_URL=postgresql://h/db\n", cfg, err,
                         notes),
                "%s", err.c_str());
  ck_assert_uint_eq(cfg.audit_batch_size, 100);
  ck_assert_str_eq(cfg.database_read_url.c_str(), "postgresql://h/db");
}
END_TEST

static Suite* configSuite() {
  Suite* s = suite_create("sarkd_config");
  TCase* tc = tcase_create("Redis");
  tcase_add_loop_test(tc, test_url, 0, static_cast<int>(sizeof(kUrls) / sizeof(kUrls[0])));
  tcase_add_test(tc, test_display_hides_password);
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_redis_parts);
  tcase_add_test(tc, test_seconds);
  tcase_add_test(tc, test_bad_values_name_the_variable);
  tcase_add_test(tc, test_database_settings);
  tcase_add_test(tc, test_env_file_unknown_name);
  suite_add_tcase(s, tc);
  TCase* key = tcase_create("L2 key");
  tcase_add_test(key, test_l2_key_required_with_l2);
  tcase_add_test(key, test_l2_key_given);
  tcase_add_test(key, test_l2_key_file);
  suite_add_tcase(s, key);
  TCase* peers = tcase_create("Peers");
  tcase_add_test(peers, test_peer_defaults);
  tcase_add_test(peers, test_peer_lists);
  tcase_add_test(peers, test_peer_bad_values_name_the_variable);
  suite_add_tcase(s, peers);
  return s;
}

int main() {
  // The defaults test must not see the caller's settings.
  const char* const mine[] = {"VALKEY_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
                              "REDIS_DB", "VALKEY_POOL_SIZE", "VALKEY_SOCKET_TIMEOUT",
                              "CACHE_L2_ENABLED", "CACHE_NEGATIVE_TTL",
                              "CACHE_INVALIDATE_TIMEOUT_MS", "REDIS_CIRCUIT_BREAKER_THRESHOLD",
                              "REDIS_CIRCUIT_BREAKER_TIMEOUT", "REDIS_CIRCUIT_BREAKER_HALF_OPEN",
                              "GATEWAY_CACHE_TTL_LOW", "GATEWAY_CACHE_TTL_MEDIUM",
                              "GATEWAY_CACHE_TTL_HIGH", "GATEWAY_CACHE_TTL_CRITICAL",
                              "DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_STATEMENT_TIMEOUT",
                              "AUDIT_BATCH_SIZE", "AUDIT_FLUSH_INTERVAL_SECONDS",
                              "AUDIT_QUEUE_MAX", "AUDIT_SPOOL_DIR",
                              "AUDIT_SUMMARY_REFRESH_SECONDS", "CACHE_L2_HMAC_KEY_FILE",
                              "SARKD_SOCKET_MODE", "SARKD_SOCKET_GROUP", "SARKD_ALLOWED_UIDS",
                              "SARKD_ALLOWED_GIDS"};
  for (const char* name : mine) {
    unsetenv(name);
  }
  setenv("CACHE_L2_HMAC_KEY", kTestKey, 1);
  SRunner* sr = srunner_create(configSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
