// Unit tests for sarkd's socket peer check (daemon/proto/peer_check.cc):
// which credentials are accepted, SO_PEERCRED, and user/group resolution.

#include <check.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "proto/peer_check.h"

using sark::PeerCredentials;
using sark::PeerPolicy;

namespace {

PeerCredentials peer(uid_t uid, gid_t gid) {
  PeerCredentials p;
  p.pid = 4242;
  p.uid = uid;
  p.gid = gid;
  return p;
}

} // namespace

START_TEST(test_root_and_self_always) {
  PeerPolicy none(1000, {}, {});
  ck_assert(none.allows(peer(0, 0)));
  ck_assert(none.allows(peer(0, 4321)));
  ck_assert(none.allows(peer(1000, 4321))); // sarkd's own user, any group
  ck_assert(!none.allows(peer(1001, 1000))); // sarkd's group is not enough
  ck_assert(!none.allows(peer(65534, 65534)));
}
END_TEST

START_TEST(test_allowed_uids_and_gids) {
  PeerPolicy p(1000, {33, 65534}, {44});
  ck_assert(p.allows(peer(33, 33)));
  ck_assert(p.allows(peer(65534, 65534)));
  ck_assert(p.allows(peer(5000, 44))); // by its group
  ck_assert(!p.allows(peer(5000, 45)));
  ck_assert(!p.allows(peer(1, 1)));
  ck_assert(!p.allows(peer(34, 33)));  // a uid-only entry says nothing about gid 33
  ck_assert(!p.allows(peer(44, 5000))); // nor a gid-only entry about uid 44
}
END_TEST

START_TEST(test_peer_credentials_of_socketpair) {
  int sv[2];
  ck_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  PeerCredentials c;
  ck_assert(sark::readPeerCredentials(sv[0], c));
  ck_assert_int_eq(c.pid, getpid());
  ck_assert_uint_eq(c.uid, geteuid());
  ck_assert_uint_eq(c.gid, getegid());
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_peer_credentials_of_a_pipe) {
  int fds[2];
  ck_assert(pipe(fds) == 0);
  PeerCredentials c;
  ck_assert(!sark::readPeerCredentials(fds[0], c));
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(test_resolve) {
  uid_t uid = 99;
  gid_t gid = 99;
  std::string why;
  ck_assert(sark::resolveUser("root", uid, why));
  ck_assert_uint_eq(uid, 0);
  ck_assert(sark::resolveUser("1234", uid, why));
  ck_assert_uint_eq(uid, 1234);
  ck_assert(sark::resolveGroup("0", gid, why));
  ck_assert_uint_eq(gid, 0);
  ck_assert(!sark::resolveUser("no-such-user-sark-test", uid, why));
  ck_assert_msg(why.find("no-such-user-sark-test") != std::string::npos, "%s", why.c_str());
  ck_assert(!sark::resolveGroup("no-such-group-sark-test", gid, why));
  ck_assert_msg(why.find("no-such-group-sark-test") != std::string::npos, "%s", why.c_str());
  ck_assert(!sark::resolveUser("4294967295", uid, why)); // (uid_t)-1 is not an id
  ck_assert(!sark::resolveGroup("12345678901", gid, why));
}
END_TEST

START_TEST(test_resolve_lists) {
  std::vector<uid_t> uids{7};
  std::vector<gid_t> gids{7};
  std::string why;
  ck_assert(sark::resolveUserList("", uids, why));
  ck_assert(uids.empty());
  ck_assert(sark::resolveGroupList("  ", gids, why));
  ck_assert(gids.empty());
  ck_assert(sark::resolveUserList("root,\t5 , 0,5", uids, why));
  ck_assert_uint_eq(uids.size(), 2);
  ck_assert_uint_eq(uids[0], 0);
  ck_assert_uint_eq(uids[1], 5);
  ck_assert(!sark::resolveGroupList("0,", gids, why));
  ck_assert(!sark::resolveGroupList("0,no-such-group-sark-test", gids, why));
  ck_assert(!sark::resolveUserList("a b", uids, why));
}
END_TEST

static Suite* peerSuite() {
  Suite* s = suite_create("sarkd_peer");
  TCase* tc = tcase_create("Peers");
  tcase_add_test(tc, test_root_and_self_always);
  tcase_add_test(tc, test_allowed_uids_and_gids);
  tcase_add_test(tc, test_peer_credentials_of_socketpair);
  tcase_add_test(tc, test_peer_credentials_of_a_pipe);
  tcase_add_test(tc, test_resolve);
  tcase_add_test(tc, test_resolve_lists);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  SRunner* sr = srunner_create(peerSuite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
