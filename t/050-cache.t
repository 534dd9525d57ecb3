# The decision cache through the decision API: L1 (the nginx zone) and L2
# (Redis through sarkd), what the key covers, a policy change, coalescing
# of concurrent misses, a full zone, cached denials, and that outages of
# OPA and Redis are never cached.  OPA's evaluation counter (/metrics)
# shows whether a decision reached the policy engine.
#
# Needs the stack of `make t` with Redis (TEST_NGINX_OPA_PORT,
# TEST_NGINX_REDIS_PORT).  Every subject is unique to the run, so nothing
# another suite or an earlier run left in Redis can answer for it.
use lib 't/lib';
use Test::Sark;
use Time::HiRes ();
use Test::Sark::Util qw(nonce authorize raw_request concurrent_requests
    decision_is poll_until l1_ready l2_ready opa_evals opa_bundle
    redis_keys);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Each block checks its status, body and error log (3), except the
# must_die block (2) and the full-zone block (5); the init sections hold
# 63 further tests.
plan tests => repeat_each() * (blocks() * 3 - 1 + 2) + 67;

our $N = nonce();

# `make t` may start the stack without Redis; start it then (no-op when it
# runs; the final `scripts/stack stop` of `make t` stops it)
stack('start', 'redis');

our $API = '/api/v1/gateway/authorize';

our $BASE = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
          . '"tool_name":"execute_query","parameters":{"query":"SELECT 1"},'
          . '"sensitivity_level":"medium","context":{"ticket":"T-1"}}';
our $LIST_TABLES = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
                 . '"tool_name":"list_tables"}';
our $GET_REPO = '{"action":"gateway:tool:invoke","server_name":"github-mcp",'
              . '"tool_name":"get_repo"}';

our $HTTP_CONFIG = sark_http_config();

# tok(NAME, CLAIMS...): an analyst's token for subject u-<run>-NAME; the
# same NAME without extra claims gives the same token
my %tokens;
sub tok {
    my ($name, %claims) = @_;
    my $make = sub {
        jwt(sub => "u-$N-$name", email => 'a@example.com', roles => ['analyst'],
            teams => ['data'], %claims);
    };
    return %claims ? $make->() : ($tokens{$name} //= $make->());
}

sub bearer { "Authorization: Bearer " . tok(@_) }

# waits until the (possibly restarted) worker knows the policy revision
sub ready {
    l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
}

# the fields a cached answer must repeat from the original decision
sub same_decision {
    my ($x, $y, $name) = @_;
    my @f = map {
        my $j = $_->{json} || {};
        join "\n", map({ $j->{$_} // '' } qw(allow reason cache_ttl)),
            JSON::PP->new->canonical->encode($j->{filtered_parameters} // {}),
            $j->{metadata}{policy_revision} // '', $j->{metadata}{evaluated_at} // '';
    } $x, $y;
    Test::More::is($f[1], $f[0], $name);
}

our $restore;       # set while OPA serves a modified policy

END {
    opa_bundle() if $restore;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => $HTTP_CONFIG) unless defined $block->http_config;
    $block->set_value(config => "    location = $API { sark_api authorize; }\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: a first decision is a MISS, the identical second one an L1 hit; OPA is asked once
--- init
l2_ready() or diag('sarkd does not store decisions in Redis (waited 15 s)');
main::ready();
my $e = opa_evals();
my $r1 = authorize($main::BASE, token => main::tok('base'));
decision_is($r1, {allow => 1, cache => 'MISS'}, 'first request: MISS');
is(opa_evals() - $e, 1, 'the MISS is one OPA evaluation');
$e = opa_evals();
my $r2 = authorize($main::BASE, token => main::tok('base'));
decision_is($r2, {allow => 1, cache => 'L1'}, 'identical second request: L1');
is(opa_evals() - $e, 0, 'the L1 hit does not reach OPA');
main::same_decision($r1, $r2, 'the L1 answer repeats the decision (reason, parameters, TTL, revision, evaluated_at)');
--- request eval
"POST $main::API\n$main::BASE"
--- more_headers eval
main::bearer('base')
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database","filtered_parameters":\{"query":"SELECT 1"\},"audit_id":"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","cache_ttl":60,"metadata":\{"policy_revision":"[0-9a-f]{16}","evaluated_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 2: each key field changed alone is a fresh decision; gateway_metadata is not in the key
--- init
main::ready();
my $base = JSON::PP->new->decode($main::BASE);
my @cases = (
    [sub               => {}, main::tok('base-other'), 1],
    [email             => {}, main::tok('base', email => 'b@example.com'), 1],
    [roles             => {}, main::tok('base', roles => ['analyst', 'viewer']), 1],
    [teams             => {}, main::tok('base', teams => ['data', 'ops']), 1],
    [action            => {action => 'gateway:server:access'}, undef, 0],
    [server_name       => {server_name => 'github-mcp'}, undef, 0],
    [tool_name         => {tool_name => 'list_tables'}, undef, 1],
    [sensitivity_level => {sensitivity_level => 'high'}, undef, 1],
    [parameters        => {parameters => {query => 'SELECT 2'}}, undef, 1],
    [context           => {context => {ticket => 'T-2'}}, undef, 1],
);
for my $c (@cases) {
    my ($field, $change, $token, $allow) = @$c;
    my $e = opa_evals();
    my $r = authorize({%$base, %$change}, token => $token // main::tok('base'));
    decision_is($r, {allow => $allow, cache => 'MISS'}, "$field changed: a fresh decision (MISS)");
    is(opa_evals() - $e, 1, "$field changed: OPA evaluated it");
}
my $e = opa_evals();
my $r = authorize({%$base, gateway_metadata => {request_id => "other-$main::N"}},
                  token => main::tok('base'));
decision_is($r, {allow => 1, cache => 'L1'}, 'gateway_metadata changed: still the L1 entry');
is(opa_evals() - $e, 0, 'gateway_metadata changed: OPA not asked');
--- request eval
"POST $main::API\n$main::BASE"
--- more_headers eval
main::bearer('base')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 3: after an nginx restart (a new, empty L1 zone) the decision comes from L2
--- http_config eval
$main::HTTP_CONFIG . "    # a restarted nginx: its L1 zone starts empty\n"
--- init
main::ready();
my $e = opa_evals();
my $r = authorize($main::BASE, token => main::tok('base'));
decision_is($r, {allow => 1, cache => 'L2'}, 'first request after the restart: L2');
is(opa_evals() - $e, 0, 'the L2 hit does not reach OPA');
--- request eval
"POST $main::API\n$main::BASE"
--- more_headers eval
main::bearer('base')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache_ttl":60,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 4: a policy change in OPA turns a cached allow into a deny without any invalidation
# The window: sarkd notices the new policy on its next revision poll
# (OPA_REVISION_POLL_MS, 1 s in conf/sarkd.env); until then the cached
# allow of the old revision is served.  The poll below is bounded at 5 s.
--- init
main::ready();
my $tok = main::tok('policy');
decision_is(authorize($main::LIST_TABLES, token => $tok), {allow => 1, cache => 'MISS'},
            'list_tables allowed for an analyst');
my $cached = authorize($main::LIST_TABLES, token => $tok);
decision_is($cached, {allow => 1, cache => 'L1'}, 'and cached in L1');
my $rev0 = $cached->{json}{metadata}{policy_revision} // '';

$main::restore = 1;
my $rev1 = opa_bundle('test_deny_rule.rego' => <<'_REGO_');
package sark.gateway

deny contains "list_tables is disabled by the test policy" if {
	input.tool_name == "list_tables"
}
_REGO_
isnt($rev1, $rev0, "OPA serves the modified policy as a new revision ($rev1)");

my @seen;
poll_until(5, sub {
    my $r = authorize($main::LIST_TABLES, token => $tok);
    push @seen, $r;
    return ref $r->{json} eq 'HASH' && !$r->{json}{allow};
});
my $deny = $seen[-1];
ok(!$deny->{json}{allow} && $deny->{status} == 200,
   'the cached allow flipped to a deny within 5 s (' . scalar(@seen) . ' requests)');
my @old = grep { !($_->{status} == 200 && $_->{json}{allow}
                   && $_->{json}{metadata}{cache} eq 'L1'
                   && $_->{json}{metadata}{policy_revision} eq $rev0) } @seen[0 .. $#seen - 1];
ok(!@old, 'before the flip every answer was the cached allow of the old revision');
decision_is($deny, {allow => 0, cache => qr/^(MISS|L2)$/,
                    reason => 'list_tables is disabled by the test policy'},
            'the first deny is a fresh decision');
isnt($deny->{json}{metadata}{policy_revision}, $rev0, 'made under a new policy revision');
my @after = map { authorize($main::LIST_TABLES, token => $tok) } 1 .. 5;
ok(!grep({ $_->{status} != 200 || $_->{json}{allow} } @after),
   'after the revision changed the old allow is never served again');

opa_bundle();
undef $main::restore;
ok(poll_until(5, sub {
        my $r = authorize($main::LIST_TABLES, token => $tok);
        return $r->{json} && $r->{json}{allow} && $r->{json}{metadata}{policy_revision} eq $rev0;
    }), 'the original policy restored: allowed again under the original revision');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('policy')
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database",
--- no_error_log
[error]



=== TEST 5: 50 concurrent identical misses are one OPA evaluation and 50 identical allows
--- init
main::ready();
my $bytes = raw_request('POST', $main::API, body => $main::BASE, token => main::tok('concurrent'));
my $e = opa_evals();
my @r = concurrent_requests(50, $bytes);
is(scalar(grep { $_->{status} == 200 } @r), 50, '50 answers, all 200');
is(scalar(grep { ref $_->{json} eq 'HASH' && $_->{json}{allow} } @r), 50, 'all 50 allow');
my %decisions = map {
    my $j = $_->{json} || {};
    (join("\n", map({ $j->{$_} // '' } qw(reason cache_ttl)),
          JSON::PP->new->canonical->encode($j->{filtered_parameters} // {}),
          $j->{metadata}{policy_revision} // '') => 1)
} @r;
is(scalar(keys %decisions), 1, 'the same decision in all 50 answers');
is(opa_evals() - $e, 1, 'exactly one OPA evaluation');
--- request eval
"POST $main::API\n$main::BASE"
--- more_headers eval
main::bearer('concurrent')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 6: nginx -t refuses a cache zone below 64 pages
--- http_config eval
$main::HTTP_CONFIG =~ s/sark_l1 1m/tiny 64k/r
--- config
--- must_die
--- error_log eval
qr/invalid sark cache zone size "64k": expected at least \d+ bytes/



=== TEST 7: a full zone evicts the oldest entries; every answer stays right
--- http_config eval
$main::HTTP_CONFIG =~ s/sark_l1 1m/tiny 256k/r
--- init
main::ready();
my $tok = main::tok('full');
my $n = 2000;
my @bad;
for my $i (1 .. $n) {
    my $r = authorize({action => 'gateway:tool:invoke', server_name => 'postgres-mcp',
                       tool_name => 'execute_query', parameters => {query => "SELECT $i"}},
                      token => $tok);
    my $j = $r->{json};
    push @bad, "$i: $r->{status} $r->{body}"
        unless $r->{status} == 200 && $j && $j->{allow}
            && $j->{reason} eq 'Allowed: analyst a@example.com can query database'
            && ($j->{filtered_parameters}{query} // '') eq "SELECT $i";
}
is(scalar(@bad), 0, "$n distinct decisions through a 256 KiB zone: all 200 and allowed")
    or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
my $l1 = grep {
    my $r = authorize({action => 'gateway:tool:invoke', server_name => 'postgres-mcp',
                       tool_name => 'execute_query', parameters => {query => "SELECT $_"}},
                      token => $tok);
    $r->{status} == 200 && $r->{json}{allow} && $r->{json}{metadata}{cache} eq 'L1';
} $n - 49 .. $n;
is($l1, 50, 'the 50 newest decisions are L1 hits');
decision_is(authorize('{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
                      . '"tool_name":"execute_query","parameters":{"query":"SELECT 1"}}',
                      token => $tok),
            {allow => 1, cache => 'L2'}, 'the oldest was evicted from L1 and comes from L2');
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query","parameters":{"query":"SELECT 1"}}
--- more_headers eval
main::bearer('full')
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database","filtered_parameters":\{"query":"SELECT 1"\},.*"cache":"L1"\}\}$
--- no_error_log
[error]
[crit]
[alert]
--- timeout: 20



=== TEST 8: a denial is cached for the policy's cache_ttl (an L1 hit with allow:false)
--- init
main::ready();
my $e = opa_evals();
my $r = authorize($main::GET_REPO, token => main::tok('deny'));
$main::deny_at = Time::HiRes::time();
decision_is($r, {allow => 0, cache => 'MISS'}, 'analyst get_repo: denied, MISS');
is($r->{json}{cache_ttl}, 5, 'the policy says cache_ttl 5 for the denial (data.sark.deny_cache_ttl)');
$e = opa_evals();
decision_is(authorize($main::GET_REPO, token => main::tok('deny')),
            {allow => 0, cache => 'L1'}, 'repeated: L1');
is(opa_evals() - $e, 0, 'the cached denial does not reach OPA');
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
main::bearer('deny')
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions for gateway:tool:invoke on github-mcp/get_repo","audit_id":"[^"]+","cache_ttl":5,"metadata":\{[^}]*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 9: once CACHE_NEGATIVE_TTL (5 s) has passed the denial is decided again
# 6 s after the first denial: one second of margin over the negative TTL.
--- init
my $left = $main::deny_at + 6 - Time::HiRes::time();
Time::HiRes::sleep($left) if $left > 0;
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
main::bearer('deny')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache":"MISS"\}\}$
--- no_error_log
[error]



=== TEST 9a: a denial whose cache_ttl is 0 is never cached: CACHE_NEGATIVE_TTL only caps a positive one
--- init
main::ready();
$main::restore = 1;
open my $fh, '<', "$ENV{TEST_NGINX_REPO}/policies/data.json" or die "policies/data.json: $!";
my $data = do { local $/; <$fh> };
$data =~ s/"deny_cache_ttl":\s*\d+/"deny_cache_ttl": 0/ or die 'no deny_cache_ttl in policies/data.json';
opa_bundle('data.json' => $data);
main::ready();
my $r = authorize($main::GET_REPO, token => main::tok('deny-0'));
decision_is($r, {allow => 0, cache => 'MISS'}, 'denied, MISS');
is($r->{json}{cache_ttl}, 0, 'the policy says cache_ttl 0 for the denial');
my $e = opa_evals();
decision_is(authorize($main::GET_REPO, token => main::tok('deny-0')),
            {allow => 0, cache => 'MISS'}, 'repeated: decided again, not from a cache');
is(opa_evals() - $e, 1, 'the denial reached OPA again');
opa_bundle();
undef $main::restore;
main::ready();
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
main::bearer('deny-0b')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache_ttl":5,.*"cache":"MISS"\}\}$
--- no_error_log
[error]



=== TEST 10: OPA stopped: a cached allow is still served, an uncached decision is 503
--- init
main::ready();
decision_is(authorize($main::LIST_TABLES, token => main::tok('outage-cached')), {allow => 1},
            'a decision cached before the outage');
stack('stop', 'opa');
decision_is(authorize($main::LIST_TABLES, token => main::tok('outage-cached')),
            {allow => 1, cache => 'L1'}, 'OPA stopped: the cached allow is served from L1');
decision_is(authorize($main::LIST_TABLES, token => main::tok('outage')),
            {status => 503, code => 'OPA-001'}, 'OPA stopped: an uncached decision is 503 OPA-001');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('outage')
--- error_code: 503
--- response_body_like: ^\{"error":\{"code":"OPA-001","message":"policy engine unreachable","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 11: OPA back: the same request is a real decision (the outage was not cached)
--- init
stack('start', 'opa');
my $e = opa_evals();    # a restarted OPA counts from 0
decision_is(authorize($main::LIST_TABLES, token => main::tok('outage')),
            {allow => 1, cache => 'MISS'}, 'the next identical request is a fresh decision');
is(opa_evals() - $e, 1, 'OPA evaluated it');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('outage')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 12: Redis stopped: decisions stay right and come from OPA
--- init
main::ready();
stack('stop', 'redis');
my $e = opa_evals();
decision_is(authorize($main::LIST_TABLES, token => main::tok('redis')),
            {allow => 1, cache => 'MISS'}, 'Redis down: list_tables allowed, MISS');
decision_is(authorize($main::GET_REPO, token => main::tok('redis')),
            {allow => 0, cache => 'MISS'}, 'Redis down: get_repo denied, MISS');
is(opa_evals() - $e, 2, 'both evaluated by OPA');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('redis')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$
--- no_error_log
[error]



=== TEST 13: Redis back: sarkd writes to L2 again and drops what L1 cached meanwhile
# The window: sarkd's Redis circuit breaker stays open for
# REDIS_CIRCUIT_BREAKER_TIMEOUT (5 s) after the failures; the wait for a
# decision to show up in Redis is bounded at 15 s.  sarkd writes L2 only
# once it is subscribed to the invalidation feed again, and on
# subscribing it drops every L1 entry (an invalidation may have been
# missed while Redis was away): the decision cached in TEST 12 is a MISS.
--- init
stack('start', 'redis');
my $i = 0;
ok(poll_until(15, sub {
        $i++;
        authorize($main::LIST_TABLES, token => main::tok("rb$i"));
        return scalar redis_keys("authz:u-$main::N-rb*");
    }), 'decisions reach Redis again within 15 s') or diag("no authz:u-$main::N-rb* key");
# past the skew window (500 ms) of the L1 drop sarkd made on subscribing
select undef, undef, undef, 0.6;
decision_is(authorize($main::LIST_TABLES, token => main::tok('redis-back')),
            {allow => 1, cache => 'MISS'}, 'a new decision with Redis back');
ok(poll_until(2, sub { scalar redis_keys("authz:u-$main::N-redis-back:*") }),
   'and it is stored in Redis');
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('redis')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"MISS"\}\}$
--- no_error_log
[error]



=== TEST 14: Redis back: after an nginx restart that decision comes from L2
--- http_config eval
$main::HTTP_CONFIG . "    # restarted once more: the L1 zone starts empty\n"
--- init
main::ready();
--- request eval
"POST $main::API\n$main::LIST_TABLES"
--- more_headers eval
main::bearer('redis-back')
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L2"\}\}$
--- no_error_log
[error]



=== TEST 15: an entry served again and again from L1 (mostly without the zone's lock) still ends at its expiry
# A denial, cached for CACHE_NEGATIVE_TTL (5 s), asked every 50 ms until 5.5 s
# after it was decided: answers from that entry keep coming up to its expiry,
# and none is sent after it.
--- init
main::ready();
my $t0 = Time::HiRes::time();
my $r = authorize($main::GET_REPO, token => main::tok('expiry'));
my $t1 = Time::HiRes::time();
decision_is($r, {allow => 0, cache => 'MISS'}, 'denied, MISS');
my $first = $r->{json}{metadata}{evaluated_at} // 'none';
my ($near, @late) = (0);
while ((my $at = Time::HiRes::time()) < $t1 + 5.5) {
    my $j = authorize($main::GET_REPO, token => main::tok('expiry'))->{json} || {};
    my $old = ($j->{metadata}{cache} // '') eq 'L1'
              && ($j->{metadata}{evaluated_at} // '') eq $first;
    $near++ if $old && $at > $t0 + 4.5;
    push @late, sprintf('%.3f s', $at - $t1) if $old && $at > $t1 + 5.02;
    Time::HiRes::sleep(0.05);
}
cmp_ok($near, '>=', 3, 'the entry answers from L1 until shortly before it expires');
is("@late", '', 'no answer from the entry after it expired');
--- request eval
"POST $main::API\n$main::GET_REPO"
--- more_headers eval
main::bearer('expiry')
--- error_code: 200
--- response_body_like: ^\{"allow":false,.*"cache":"(L1|MISS)"\}\}$
--- no_error_log
[error]
