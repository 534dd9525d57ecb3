# Whoever can write to Redis cannot grant access: every L2 value carries an
# HMAC of its Redis key and its decision (CACHE_L2_HMAC_KEY).  A forged
# allow written straight into Redis under the key of a denied question, a
# real allow moved there from another key, and a real denial turned into
# an allow are each a miss: the next decision comes from OPA, the value is
# deleted, and sarkd counts and logs it.
#
# nginx runs here without an L1 zone, so every decision reads L2 first.
# The Redis keys are found with SCAN after a legitimate decision, never
# computed here.  sarkd is restarted at the start (its counter and log
# rate limit start afresh) and at the end (its `stopped` line reports the
# counter).
#
# Needs the stack of `make t` with Redis.
use lib 't/lib';
use Test::Sark;
use Time::HiRes ();
use Test::Sark::Util qw(nonce authorize decision_is poll_until l2_ready opa_evals
    redis_cli redis_keys sarkd_log_mark sarkd_log_since);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Each block checks its status, body and error log (3: [error], or [crit]
# where sarkd restarts and the worker logs the lost connection); the init
# sections
# hold 24 further tests.
plan tests => repeat_each() * (blocks() * 3) + 24;

our $N = nonce();

stack('start', 'redis');

our $API = '/api/v1/gateway/authorize';
our $LIST_TABLES = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
                 . '"tool_name":"list_tables"}';
our $GET_REPO = '{"action":"gateway:tool:invoke","server_name":"github-mcp",'
              . '"tool_name":"get_repo"}';

my %tokens;
sub tok {
    my ($name) = @_;
    return $tokens{$name} //= jwt(sub => "u-$N-$name", email => 'a@example.com',
                                  roles => ['analyst']);
}

# key_of(NAME): the one Redis key of subject u-<run>-NAME, once it is there
sub key_of {
    my ($name) = @_;
    my @keys;
    poll_until(3, sub { @keys = redis_keys("authz:u-$N-$name:*"); @keys == 1 });
    return $keys[0];
}

# denied_by_opa(NAME): the denied question of NAME asked again must be a
# fresh decision by OPA (one evaluation), denied
sub denied_by_opa {
    my ($what) = @_;
    my $e = opa_evals();
    my $r = authorize($main::GET_REPO, token => tok('b'));
    decision_is($r, {allow => 0, cache => 'MISS'},
                "$what: the question is denied again, by a fresh decision");
    is(opa_evals() - $e, 1, "$what: OPA evaluated it");
}

# an L2 key holding `value` for 60 s, as an attacker with Redis access would
sub forge {
    my ($key, $value) = @_;
    my $ok = redis_cli('SET', $key, $value, 'EX', '60');
    return $ok eq 'OK';
}

our ($MARK, $KA, $KB);

add_block_preprocessor(sub {
    my $block = shift;
    # no sark_cache_zone: nothing answers from L1
    $block->set_value(http_config => sark_http_config() =~ s/^.*sark_cache_zone.*\n//mr)
        unless defined $block->http_config;
    $block->set_value(config => "    location = $API { sark_api authorize; }\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: a fresh sarkd; an allowed and a denied question are decided and stored in L2, values tagged
--- init
stack('restart', 'sarkd');
l2_ready() or diag('sarkd does not store decisions in Redis (waited 15 s)');
# past the skew window of the invalidation sarkd makes when it starts
Time::HiRes::sleep(0.6);
$main::MARK = sarkd_log_mark();
decision_is(authorize($main::LIST_TABLES, token => main::tok('a')), {allow => 1, cache => 'MISS'},
            'A: list_tables allowed for an analyst');
decision_is(authorize($main::GET_REPO, token => main::tok('b')), {allow => 0, cache => 'MISS'},
            'B: get_repo denied for an analyst');
$main::KA = main::key_of('a');
$main::KB = main::key_of('b');
ok($main::KA && $main::KB, 'both decisions are in Redis');
my $e = opa_evals();
decision_is(authorize($main::LIST_TABLES, token => main::tok('a')), {allow => 1, cache => 'L2'},
            'A again: from L2 (no L1 zone)');
is(opa_evals() - $e, 0, 'the L2 hit does not reach OPA');
like(scalar redis_cli('GET', $main::KA), qr/^sark1:[0-9a-f]{64}:\{"allow":true,/,
     'the stored value carries its tag before the decision');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer " . main::tok('a')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L2"\}\}$
--- no_error_log
[crit]



=== TEST 2: a forged allow without a tag, written under the denied question's key, is not used
--- init
my $now = int(Time::HiRes::time() * 1000);
my ($rev) = (scalar redis_cli('GET', $main::KA)) =~ /"policy_revision":"([^"]*)"/;
my $forged = '{"allow":true,"reason":"forged","cache_ttl":60,"policy_revision":"' . ($rev // '')
           . '","evaluated_at":' . ($now - 1000) . ',"expires_at":' . ($now + 60000) . '}';
ok(main::forge($main::KB, $forged), 'a plain allow written into Redis under B\'s key');
main::denied_by_opa('forged allow without a tag');
isnt(scalar redis_cli('GET', $main::KB), $forged, 'the forged value is gone');
my @warn = sarkd_log_since($main::MARK, 'L2 value failed authentication; deleting it');
is(scalar @warn, 1, 'sarkd logged it (once: the log is rate-limited)');
is($warn[0]{key} // '', $main::KB, 'naming the key');
is($warn[0]{level} // '', 'warn', 'at warn level');
is($warn[0]{l2_unauthenticated} // '', 1, 'with the count so far');
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
"Authorization: Bearer " . main::tok('b')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache":"(L2|MISS)"\}\}$
--- no_error_log
[error]



=== TEST 3: A's real, tagged allow copied under B's key is not used: the tag covers the key
--- init
my $real = redis_cli('GET', $main::KA);
like($real, qr/^sark1:/, 'A\'s value, as sarkd stored it');
ok(main::forge($main::KB, $real), 'copied under B\'s key');
main::denied_by_opa('an allow moved from another key');
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
"Authorization: Bearer " . main::tok('b')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache":"(L2|MISS)"\}\}$
--- no_error_log
[error]



=== TEST 4: B's own tagged denial, turned into an allow, is not used: the tag covers the decision
--- init
# (a denial is cached for CACHE_NEGATIVE_TTL, 5 s: ask again to be sure one is there)
authorize($main::GET_REPO, token => main::tok('b'));
my $own;
poll_until(2, sub { $own = redis_cli('GET', $main::KB); $own =~ /^sark1:.*"allow":false/ });
like($own, qr/^sark1:[0-9a-f]{64}:\{"allow":false,/, 'B\'s fresh denial, as sarkd stored it');
(my $flipped = $own) =~ s/"allow":false/"allow":true/;
ok(main::forge($main::KB, $flipped), 'written back with "allow":true and the same tag');
main::denied_by_opa('a denial turned into an allow');
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
"Authorization: Bearer " . main::tok('b')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache":"(L2|MISS)"\}\}$
--- no_error_log
[error]



=== TEST 5: sarkd counted every value that failed authentication (its stopped line says 3)
--- init
stack('restart', 'sarkd');
my ($stopped) = sarkd_log_since($main::MARK, 'stopped');
ok($stopped, 'the restarted sarkd logged its totals');
is($stopped->{l2_unauthenticated} // 'none', 3, 'l2_unauthenticated: 3');
l2_ready() or diag('sarkd does not store decisions in Redis (waited 15 s)');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer " . main::tok('a5')
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[crit]
