# The cache never answers one question with another's decision.  sarkd
# computes every cache key itself from the request it decoded (a key a
# client sends is ignored); concurrent misses share an OPA evaluation only
# when their whole policy input is identical, gateway_metadata included;
# and an absent value and an empty one are different questions.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request authorize raw_request concurrent_requests
    decision_is l1_ready l2_ready redis_keys opa_bundle);
use IO::Socket::UNIX ();
use IO::Select ();

repeat_each(1);
no_shuffle();

our $ROUNDS = 20;

# block 1: 2 per round + 1; block 2: 3 per pair (3 pairs) + 1; block 3: 4
plan tests => ($ROUNDS * 2 + 1 + 3) + (10 + 3) + (4 + 3);

our $N = nonce();
our $restore;

END { opa_bundle() if $restore }

# A policy that reads the source address: allowed unless it is 10.6.6.6.
# It says cache_ttl 0, as a policy that reads gateway_metadata must.
our $BY_ADDRESS = <<'_REGO_';
package sark.gateway

default allow := false

allow if input.gateway_metadata.source_ip != "10.6.6.6"

reason := "allowed from this address" if allow

else := "forbidden source address"

cache_ttl := 0
_REGO_

sub ask {
    my ($sub, $ip) = @_;
    my $body = '{"action":"gateway:server:access","server_name":"github-mcp",'
             . qq{"gateway_metadata":{"source_ip":"$ip"}\}};
    return raw_request('POST', '/api/v1/gateway/authorize', body => $body,
                       token => jwt(sub => $sub, roles => ['developer']));
}

# one frame to sarkd: AUTHZ_REQ id 7 with these TLVs; returns its answer's
# fields { tag => value }
sub sarkd_ask {
    my (@tlv) = @_;
    my $payload = '';
    while (my ($tag, $value) = splice @tlv, 0, 2) {
        $payload .= pack('n N', $tag, length $value) . $value;
    }
    my $s = IO::Socket::UNIX->new(Peer => $ENV{TEST_NGINX_SARKD_SOCKET})
        or die "connect $ENV{TEST_NGINX_SARKD_SOCKET}: $!";
    syswrite $s, pack('a2 C C n n N N', 'SK', 2, 1, 0, 0, 7, length $payload) . $payload;
    my $buf = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(5)) {
        sysread($s, $buf, 65536, length $buf) or last;
        while (length $buf >= 16) {
            my ($type, $id, $len) = unpack('x3 C x4 N N', $buf);
            last if length $buf < 16 + $len;
            my $body = substr $buf, 16, $len;
            substr($buf, 0, 16 + $len) = '';
            next unless $type == 2 && $id == 7;
            my %f;
            while (length $body >= 6) {
                my ($tag, $l) = unpack('n N', $body);
                $f{$tag} = substr $body, 6, $l;
                substr($body, 0, 6 + $l) = '';
            }
            return \%f;
        }
    }
    return undef;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /enforced {
        sark_authz        on;
        sark_authz_action gateway:tool:invoke;
        sark_authz_server github-mcp;
        sark_authz_tool   $arg_tool;
        add_header X-Sark-Cache $sark_cache always;
        empty_gif;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: concurrent misses that differ only in gateway_metadata are decided apart: the forbidden address never gets the other's allow
--- init
$main::restore = 1;
opa_bundle('gateway.rego' => $main::BY_ADDRESS);
for my $i (1 .. $main::ROUNDS) {
    my $sub = "u-$main::N-addr-$i";
    my ($ok, $bad) = concurrent_requests(2, [main::ask($sub, '192.0.2.10'),
                                             main::ask($sub, '10.6.6.6')]);
    decision_is($ok, {allow => 1}, "round $i: the allowed address is allowed");
    decision_is($bad, {allow => 0, reason => 'forbidden source address'},
                "round $i: the forbidden address is refused");
}
opa_bundle();
undef $main::restore;
ok(l1_ready(), 'the shipped policy back');
--- request eval
"POST /api/v1/gateway/authorize\n" . '{"action":"gateway:server:access","server_name":"github-mcp"}'
--- more_headers eval
"Authorization: Bearer " . jwt(roles => ['admin'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 2: an empty value and an absent one are different questions (email, server_name, context)
--- init
my $with_empty = jwt(sub => "u-$main::N-email", email => '', roles => ['admin']);
my $without = jwt(sub => "u-$main::N-email", email => undef, roles => ['admin']);
my $q = '{"action":"gateway:server:list"}';
decision_is(authorize($q, token => $with_empty), {allow => 1, cache => 'MISS'}, 'email "": decided');
decision_is(authorize($q, token => $with_empty), {allow => 1, cache => 'L1'}, 'email "" again: L1');
decision_is(authorize($q, token => $without), {allow => 1, cache => 'MISS'},
            'no email: another question, not the L1 entry of email ""');
# an enforced location keys each request anew, from the verified token
# the worker remembers: an empty email must stay an empty one there too
my $fresh = jwt(sub => "u-$main::N-email-enforced", email => '', roles => ['admin']);
my @seen = map { http_request('GET', '/enforced?tool=get_repo', token => $fresh)
                     ->{headers}{'x-sark-cache'} // '' } 1 .. 3;
is("@seen", 'MISS L1 L1', 'email "" at an enforced location: decided once, then L1 each time');
for my $pair (['{"action":"gateway:server:list","server_name":""}',
               '{"action":"gateway:server:list"}', 'server_name'],
              ['{"action":"gateway:server:list","context":{}}',
               '{"action":"gateway:server:list","context":null}', 'context']) {
    my ($a, $b, $name) = @$pair;
    my $admin = jwt(sub => "u-$main::N-$name", roles => ['admin']);
    decision_is(authorize($a, token => $admin), {allow => 1, cache => qr/^(MISS|L1)$/}, "$name present");
    decision_is(authorize($a, token => $admin), {allow => 1, cache => 'L1'}, "$name present again: L1");
    decision_is(authorize($b, token => $admin), {allow => 1, cache => 'MISS'},
                "$name absent: not the L1 entry of the present one");
}
--- request eval
"POST /api/v1/gateway/authorize\n" . '{"action":"gateway:server:list"}'
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "u-$main::N-email", email => undef, roles => ['admin'])
--- error_code: 200
--- response_body_like: "cache":"L1"
--- no_error_log
[error]



=== TEST 3: a cache key sent to sarkd is ignored: sarkd keys the decision by what was asked and who asked
--- init
l2_ready() or diag('sarkd does not store decisions in Redis');
my $victim = "u-$main::N-victim";
my $forged = "authz:$victim:gateway:tool:invoke:postgres-mcp:execute_mutation:medium:" . ('0' x 64);
my $a = main::sarkd_ask(1 => 'gateway:tool:invoke', 2 => 'postgres-mcp', 3 => 'list_tables',
                        6 => "u-$main::N-attacker", 8 => 'analyst', 14 => $forged);
ok($a && ord($a->{1}) == 1, 'sarkd decided (allow)');
is(scalar(redis_keys("authz:$victim:*")), 0, 'nothing was stored under the key the client sent');
is(scalar(redis_keys("authz:u-$main::N-attacker:gateway:tool:invoke:postgres-mcp:list_tables:medium:*")), 1,
   'the decision is stored under the key of what was asked');
my $r = authorize('{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_mutation"}',
                  token => jwt(sub => $victim, roles => ['analyst']));
decision_is($r, {allow => 0, cache => 'MISS'}, 'the victim is decided by the policy');
--- request eval
"POST /api/v1/gateway/authorize\n" . '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}'
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "u-$main::N-attacker", email => undef, roles => ['analyst'])
--- error_code: 200
--- response_body_like: "allow":true
--- no_error_log
[error]
