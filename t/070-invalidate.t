# POST /api/v1/cache/invalidate: who may call it, what a pattern removes
# from L1 and from Redis (L2), and that a second host sharing OPA and
# Redis drops its entries too.
#
# The module treats an entry evaluated up to SARK_INVALIDATION_SKEW_MS (500 ms)
# after a matching invalidation as stale too (clock skew between hosts).
# Blocks that re-decide entries after an invalidation first wait 0.6 s so
# they test one thing; TEST 8 checks that window on its own: such an entry
# must become an L1 hit once the window has passed (polled, bounded at
# 3 s).
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request authorize decision_is poll_until l1_ready
    l2_ready redis_keys redis_cli redis_publish);
use File::Path ();

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Tests per block, in order: 3 3 3 3 4 5 3 3 4 3 3 3 3 3 3 4 1 (54); the
# init sections hold 37 more.
plan tests => repeat_each() * 54 + 37;

our $N = nonce();
$ENV{TEST_NGINX_RUN_ID} = $N;

# `make t` may start the stack without Redis; start it then (no-op when it
# runs; the final `scripts/stack stop` of `make t` stops it)
stack('start', 'redis');

our $ADMIN_KEY = 'test-admin-key-0123456789';

our $LIST_TABLES = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
                 . '"tool_name":"list_tables"}';
our $QUERY = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
           . '"tool_name":"execute_query","parameters":{"query":"SELECT 1"}}';

sub user { jwt(sub => "u-$N-$_[0]", email => 'a@example.com', roles => ['analyst']) }

our %tok = map { $_ => user($_) } qw(A B C H E F);
our $admin = jwt(sub => "u-$N-admin", roles => ['admin']);

sub ready {
    l1_ready(@_) or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
}

# cached(BODY, USER, %opt): one test; asks until the answer is an L1 hit
# (at most 3 s, see the skew window above)

# past the skew window of the invalidation just made
sub after_skew { select undef, undef, undef, 0.6 }
sub cached {
    my ($body, $who, %opt) = @_;
    my $r;
    poll_until(3, sub {
        $r = authorize($body, token => $tok{$who}, %opt);
        return ref $r->{json} eq 'HASH' && ($r->{json}{metadata}{cache} // '') eq 'L1';
    });
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    decision_is($r, {allow => 1, cache => 'L1'}, "$who: " . ($body =~ /"tool_name":"(\w+)"/)[0]
                . ' cached in L1' . ($opt{port} ? " on port $opt{port}" : ''));
}

# The second host: its own sarkd and nginx (conf/nginx.conf.in, with the
# L1 zone, the decision API and the invalidate endpoint) under run dir
# host2, sharing OPA and Redis.
our $H2_RUN = ($ENV{SARK_RUN_DIR} // "$ENV{TEST_NGINX_REPO}/run/test") . '/host2';
our $H2_PORT = $ENV{TEST_NGINX_SERVER_PORT} + 1;
our $host2_started;

sub host2 {
    local $ENV{SARK_RUN_DIR} = $H2_RUN;
    local $ENV{SARK_NGINX_PORT} = $H2_PORT;
    return stack(@_);
}

END {
    eval { host2('stop', 'nginx', 'sarkd') } if $host2_started;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config("sark_admin_key $ADMIN_KEY"))
        unless defined $block->http_config;
    $block->set_value(config => <<'_EOC_') unless defined $block->config;
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/cache/invalidate  { sark_api invalidate; }
_EOC_
    $block->set_value(more_headers => "X-Admin-Key: $ADMIN_KEY")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: no credentials: 401 AU-001
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:*"}
--- more_headers
--- error_code: 401
--- response_body_like: ^\{"error":\{"code":"AU-001","message":"missing bearer token","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 2: a token without the admin role: 403 AZ-002
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:*"}
--- more_headers eval
"Authorization: Bearer $main::tok{A}"
--- error_code: 403
--- response_body_like: ^\{"error":\{"code":"AZ-002","message":"the admin role is required","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 3: a wrong admin key: 401 AU-002
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:*"}
--- more_headers
X-Admin-Key: not-the-key
--- error_code: 401
--- response_body_like: ^\{"error":\{"code":"AU-002","message":"invalid admin key","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 4: a pattern that does not start with authz: is 400 GW-100
--- request
POST /api/v1/cache/invalidate
{"pattern":"user:*"}
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"GW-100","message":"pattern must start with \\"authz:\\" and be at most 256 bytes","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 5: GET is 405 GW-101
--- request
GET /api/v1/cache/invalidate
--- error_code: 405
--- response_headers
Allow: POST
--- response_body_like: ^\{"error":\{"code":"GW-101",
--- no_error_log
[error]



=== TEST 6: authz:<user>:* answers with what it removed
--- init
l2_ready() or diag('sarkd does not store decisions in Redis (waited 15 s)');
main::ready();
main::cached($main::LIST_TABLES, 'A');
main::cached($main::QUERY, 'A');
main::cached($main::LIST_TABLES, 'B');
is(scalar(redis_keys("authz:u-$main::N-A:*")), 2, "A's two decisions are in Redis");
is(scalar(redis_keys("authz:u-$main::N-B:*")), 1, "B's decision is in Redis");
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:u-$TEST_NGINX_RUN_ID-A:*"}
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"invalidated","pattern":"authz:u-[0-9a-f]+-A:\*","l2_deleted":2,"hosts":1,"hosts_expected":1,"complete":true\}$
--- error_log
sark: cache invalidation "authz:u-$TEST_NGINX_RUN_ID-A:*" by "admin-key"
--- no_error_log
[error]



=== TEST 7: after authz:<user>:* that user's entries are gone from L1 and Redis; another user's stay
--- init
is(scalar(redis_keys("authz:u-$main::N-A:*")), 0, "A's keys are gone from Redis");
is(scalar(redis_keys("authz:u-$main::N-B:*")), 1, "B's key is still in Redis");
main::after_skew();
decision_is(authorize($main::LIST_TABLES, token => $main::tok{A}),
            {allow => 1, cache => 'MISS'}, 'A: list_tables is decided again');
decision_is(authorize($main::QUERY, token => $main::tok{A}),
            {allow => 1, cache => 'MISS'}, 'A: execute_query is decided again');
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::tok{B}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 8: an entry decided again right after an invalidation is an L1 hit once the skew window has passed
--- init
my $r = http_request('POST', '/api/v1/cache/invalidate', body => {pattern => "authz:u-$main::N-C:*"},
                     headers => {'X-Admin-Key' => $main::ADMIN_KEY});
is($r->{status}, 200, 'authz:<C>:* invalidated');
decision_is(authorize($main::LIST_TABLES, token => $main::tok{C}),
            {allow => 1, cache => 'MISS'}, 'C: list_tables decided at once after it');
main::cached($main::LIST_TABLES, 'C');
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::tok{C}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 9: authz:*:execute_query:* (by an admin token)
--- init
main::cached($main::LIST_TABLES, 'A');
main::cached($main::QUERY, 'A');
main::cached($main::QUERY, 'B');
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:*:execute_query:*"}
--- more_headers eval
"Authorization: Bearer $main::admin"
--- error_code: 200
--- response_body_like: ^\{"status":"invalidated","pattern":"authz:\*:execute_query:\*","l2_deleted":\d+,"hosts":1,"hosts_expected":1,"complete":true\}$
--- error_log
sark: cache invalidation "authz:*:execute_query:*" by "u-$TEST_NGINX_RUN_ID-admin"
--- no_error_log
[error]



=== TEST 10: after authz:*:execute_query:* only execute_query decisions are gone
--- init
is(scalar(redis_keys("authz:u-$main::N-*:execute_query:*")), 0, 'no execute_query key left in Redis');
is(scalar(redis_keys("authz:u-$main::N-[AB]:*:list_tables:*")), 2, 'the list_tables keys of A and B stay');
main::after_skew();
decision_is(authorize($main::QUERY, token => $main::tok{A}),
            {allow => 1, cache => 'MISS'}, 'A: execute_query is decided again');
decision_is(authorize($main::QUERY, token => $main::tok{B}),
            {allow => 1, cache => 'MISS'}, 'B: execute_query is decided again');
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::tok{A}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 11: authz:* removes everything
--- init
main::cached($main::QUERY, 'A');
main::cached($main::LIST_TABLES, 'B');
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:*"}
--- error_code: 200
--- response_body_like: ^\{"status":"invalidated","pattern":"authz:\*","l2_deleted":\d+,"hosts":1,"hosts_expected":1,"complete":true\}$
--- no_error_log
[error]



=== TEST 12: after authz:* every earlier entry is a fresh decision
--- init
is(scalar(redis_keys("authz:u-$main::N-*")), 0, 'no key of this run left in Redis');
decision_is(authorize($main::QUERY, token => $main::tok{A}),
            {allow => 1, cache => 'MISS'}, 'A: execute_query is decided again');
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::tok{B}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"MISS"\}\}$
--- no_error_log
[error]



=== TEST 13: two hosts: an invalidation on host 1 is confirmed by host 2
# Host 2's nginx runs two workers; both must have heard the policy
# revision from its sarkd before its L1 is used, and its sarkd must be
# subscribed to the invalidation feed (it drops every L1 entry when it
# subscribes, so H is decided after that plus the skew window).  Bounded
# wait, 5 s.
--- init
File::Path::remove_tree($main::H2_RUN);
$main::host2_started = 1;
host2('start', 'sarkd', 'nginx');
my $count = sub {
    my ($file, $re) = @_;
    open my $fh, '<', $file or return 0;
    return scalar grep { $_ =~ $re } <$fh>;
};
ok(poll_until(5, sub {
        $count->("$main::H2_RUN/nginx/error.log", qr/sark: policy revision is now/) >= 2
            && $count->("$main::H2_RUN/sarkd.log", qr/invalidation feed subscribed/) >= 1;
    }), 'host 2 is up: both workers know the policy revision, sarkd is subscribed');
main::after_skew();
main::cached($main::LIST_TABLES, 'H');
decision_is(authorize($main::LIST_TABLES, token => $main::tok{H}, port => $main::H2_PORT),
            {allow => 1, cache => 'L2'}, 'host 2: the decision host 1 made comes from L2');
main::cached($main::LIST_TABLES, 'H', port => $main::H2_PORT);
--- request
POST /api/v1/cache/invalidate
{"pattern":"authz:u-$TEST_NGINX_RUN_ID-H:*"}
--- error_code: 200
--- response_body_like: ^\{"status":"invalidated","pattern":"authz:u-[0-9a-f]+-H:\*","l2_deleted":1,"hosts":2,"hosts_expected":2,"complete":true\}$
--- no_error_log
[error]



=== TEST 14: two hosts: host 2's very next request is a fresh decision, not L1 nor a stale L2
--- init
decision_is(authorize($main::LIST_TABLES, token => $main::tok{H}, port => $main::H2_PORT),
            {allow => 1, cache => 'MISS'}, 'host 2: decided again');
decision_is(authorize($main::LIST_TABLES, token => $main::tok{H}),
            {allow => 1, cache => qr/^(MISS|L2)$/}, 'host 1: not L1');
ok(eval { host2('stop', 'nginx', 'sarkd'); 1 }, 'host 2 stopped') or diag($@);
$main::host2_started = 0;
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::tok{H}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 15: an empty body is refused, not taken for authz:*: cached entries stay
--- init
main::cached($main::LIST_TABLES, 'E');
my $r = http_request('POST', '/api/v1/cache/invalidate', body => '',
                     headers => { 'X-Admin-Key' => $main::ADMIN_KEY });
is($r->{status}, 400, 'an empty body: 400');
decision_is(authorize($main::LIST_TABLES, token => $main::tok{E}),
            {allow => 1, cache => 'L1'}, 'the cached entry is still served from L1');
--- request
POST /api/v1/cache/invalidate
{"other":"authz:*"}
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"GW-100","message":"expected \{\\"pattern\\": \\"authz:...\\"\}",
--- no_error_log
[error]



=== TEST 16: the pattern and the caller are logged escaped: a newline cannot start a log line of its own
--- request eval
"POST /api/v1/cache/invalidate\n" . '{"pattern":"authz:x\n2026/12/06 00:00:00 [error] forged"}'
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "adm\n[error] forged-sub", roles => ['admin'])
--- error_code: 200
--- error_log eval
[qr/sark: cache invalidation "authz:x\\x0a2026\/12\/06 00:00:00 \[error\] forged" by "adm\\x0a\[error\] forged-sub"/]
--- no_error_log eval
[qr/^2026\/12\/06 00:00:00 \[error\] forged/, qr/^\[error\] forged-sub/]



=== TEST 17: invalidation messages: one not sealed with CACHE_L2_HMAC_KEY (a writer of Redis) is ignored; a sealed one dated in the future counts as issued now, so caching comes back after the skew window, not in 2100
--- init
main::cached($main::LIST_TABLES, 'F');
my $msg = '{"pattern":"authz:u-' . $main::N . '-F:*","origin":"other-host","issued_at":4102444800000,"id":1}';
redis_publish('sark:invalidate', $msg, sealed => 0);
redis_publish('sark:invalidate', $msg, key => 'another-key');
redis_publish('sark:invalidate', $msg, for => 'sark:keys');
select undef, undef, undef, 0.5;
decision_is(authorize($main::LIST_TABLES, token => $main::tok{F}), {allow => 1, cache => 'L1'},
            'bare, sealed with another key, or for another channel: ignored');
redis_publish('sark:invalidate', $msg);
ok(poll_until(3, sub { (authorize($main::LIST_TABLES, token => $main::tok{F})->{json}{metadata}{cache} // '') ne 'L1' }),
   'sealed: the message invalidates F\'s entry');
main::after_skew();
main::cached($main::LIST_TABLES, 'F');
--- request
POST /api/v1/cache/invalidate
{"other":"x"}
--- error_code: 400
