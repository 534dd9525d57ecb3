# Dependencies going away: OPA stopped, OPA stalled past OPA_TIMEOUT_MS,
# sarkd stopped and restarted.  Outages are 503 with Retry-After, never an
# allow; recovery needs no nginx reload.
use lib 't/lib';
use Test::Sark;

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

plan tests => repeat_each() * (blocks() * 3 + 1) + (2 - 1) * 2;

our $token = jwt(roles => ['analyst']);
our $nonce = 0;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
_EOC_
    $block->set_value(config => "    location = /authorize { sark_api authorize; }\n")
        unless defined $block->config;
    $block->set_value(more_headers => "Authorization: Bearer $main::token")
        unless defined $block->more_headers;
    # a key of its own per block: cached decisions keep serving through an
    # outage (docs/design.md, Security and reliability rules), and this
    # suite is about the ones that are not
    $block->set_value(request => "POST /authorize\n"
        . '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
        . '"tool_name":"list_tables","parameters":{"nonce":"'
        . "$$-" . time() . "-" . ++$main::nonce . '"}}')
        unless defined $block->request;
});

run_tests();

__DATA__

=== TEST 1: healthy baseline
--- error_code: 200
--- response_headers
!Retry-After
--- response_body_like: ^\{"allow":true,



=== TEST 2: OPA stopped: 503, OPA-001, Retry-After
--- init
stack('stop', 'opa');
--- error_code: 503
--- response_headers
Retry-After: 5
--- response_body_like: ^\{"error":\{"code":"OPA-001","message":"policy engine unreachable","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: OPA back: decisions again
--- init
stack('start', 'opa');
--- error_code: 200
--- response_headers
!Retry-After
--- response_body_like: ^\{"allow":true,



=== TEST 4: OPA stalled past OPA_TIMEOUT_MS: 503 OPA-003
--- init
stack('pause', 'opa');
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body_like: ^\{"error":\{"code":"OPA-003","message":"policy evaluation timed out after \d+ ms","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 5: OPA resumed: decisions again
--- init
stack('resume', 'opa');
--- error_code: 200
--- response_headers
!Retry-After
--- response_body_like: ^\{"allow":true,



=== TEST 6: sarkd stopped: 503 CN-001, and the worker says why
--- init
stack('stop', 'sarkd');
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body_like: ^\{"error":\{"code":"CN-001","message":"authorization service unavailable","request_id":"[0-9a-f]{32}"\}\}$
--- error_log
sark: sarkd at unix:



=== TEST 7: sarkd restarted: the next request succeeds without a reload
--- init
stack('start', 'sarkd');
--- error_code: 200
--- response_headers
!Retry-After
--- response_body_like: ^\{"allow":true,



=== TEST 8: sarkd stalled: the request gives up after sark_decision_timeout
--- config
    location = /authorize {
        sark_decision_timeout 300ms;
        sark_api authorize;
    }
--- init
stack('pause', 'sarkd');
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body_like: ^\{"error":\{"code":"CN-002","message":"no decision within 300 ms","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 9: sarkd resumed: decisions again
--- init
stack('resume', 'sarkd');
--- error_code: 200
--- response_headers
!Retry-After
--- response_body_like: ^\{"allow":true,



=== TEST 10: OPA stalled with more decisions than OPA_MAX_CONNECTIONS: the queued ones time out after OPA_TIMEOUT_MS as well (OPA-003), not after sark_decision_timeout
--- init
{
    local $ENV{OPA_MAX_CONNECTIONS} = 1;
    local $ENV{OPA_TIMEOUT_MS} = 500;
    stack('restart', 'sarkd');
}
stack('pause', 'opa');
my @reqs = map {
    my $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
             . '"tool_name":"list_tables","parameters":{"queued":"' . "$$-" . time() . "-$_" . '"}}';
    "POST /authorize HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Authorization: Bearer $main::token\r\nContent-Length: " . length($body) . "\r\n\r\n$body"
} 1 .. 8;
my @answers = Test::Sark::Util::concurrent_requests(8, \@reqs);
my @codes = map { ($_->{json} && ref $_->{json}{error}) ? $_->{json}{error}{code} : $_->{status} } @answers;
is("@codes", join(' ', ('OPA-003') x 8), 'all 8 answered OPA-003, the 7 queued ones included');
like($answers[-1]{body}, qr/timed out after 500 ms/, 'the message names OPA_TIMEOUT_MS');
stack('resume', 'opa');
stack('restart', 'sarkd');
--- error_code: 200
--- response_body_like: ^\{"allow":true,



=== TEST 11: sarkd draining (SIGTERM while an OPA call is in flight): a new decision is refused at once with GW-503, the one in flight still gets its answer
--- init
stack('pause', 'opa');
my $fresh = sub {
    my $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
             . '"tool_name":"list_tables","parameters":{"drain":"' . "$$-" . time() . "-$_[0]" . '"}}';
    "POST /authorize HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Authorization: Bearer $main::token\r\nContent-Length: " . length($body) . "\r\n\r\n$body"
};
require IO::Socket::INET;
my $first = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
    or die "connect: $!";
syswrite $first, $fresh->('in-flight');
Time::HiRes::sleep(0.3);
my ($pid) = stack('pid', 'sarkd') =~ /(\d+)/;
kill 'TERM', $pid;
Time::HiRes::sleep(0.2);
my $t0 = Time::HiRes::time();
my $r = Test::Sark::Util::parse_raw_response(Test::Sark::Util::raw_exchange([$fresh->('during-drain')]));
my $took = Time::HiRes::time() - $t0;
my $code = $r->{json} && ref $r->{json}{error} ? $r->{json}{error}{code} : $r->{status};
is("$r->{status} $code", '503 GW-503', "a decision asked while sarkd drains: 503 GW-503 at once (${took}s)");
local $/;
my $a = Test::Sark::Util::parse_raw_response(<$first> // '');
like($a->{json}{error}{code} // '', qr/^OPA-003$/, 'the decision in flight when the drain began still got its answer');
stack('resume', 'opa');
Test::Sark::Util::poll_until(5, sub { !kill 0, $pid });
stack('start', 'sarkd');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
