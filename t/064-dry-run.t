# sark_authz_dry_run on: decisions are taken, audited and logged as usual,
# but a request sark would refuse goes on: a deny (its row says
# "dry_run": true, $sark_decision says dry_run_deny), a missing or bad
# token, an outage — each logged at warn with the refusal it would have
# been.  On an MCP location nothing is changed either: a denied tools/call
# reaches the server, tools/list is not filtered, arguments go as sent.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request l1_ready audit_rows_for poll_until decode_json_or_undef);
use JSON::PP ();

repeat_each(1);
no_shuffle();

plan tests => 20;

our $N = nonce();
our $dev = jwt(sub => "u-$N-dev", email => 'd@example.com', roles => ['developer']);
our $guest = jwt(sub => "u-$N-guest", email => 'g@example.com', roles => ['guest']);

sub mcp {
    my ($body, %opt) = @_;
    my %h = ('Content-Type' => 'application/json', 'Accept' => 'application/json, text/event-stream');
    $h{'Mcp-Session-Id'} = $opt{session} if defined $opt{session};
    my $r = http_request('POST', '/mcp/dry', token => $main::guest, headers => \%h,
                         body => JSON::PP->new->encode($body));
    my @data = $r->{body} =~ /^data: (.*)$/mg;
    $r->{rpc} = @data ? decode_json_or_undef($data[-1]) : $r->{json};
    return $r;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }

    location ~ ^/dry/(?<tool>[a-z0-9_]+)$ {
        sark_authz         on;
        sark_authz_dry_run on;
        sark_authz_action  gateway:tool:invoke;
        sark_authz_server  github-mcp;
        sark_authz_tool    $tool;
        add_header X-Sark-Decision $sark_decision always;
        empty_gif;
    }

    location /mcp/dry {
        sark_mcp           on;
        sark_authz_dry_run on;
        sark_authz_server  everything;
        proxy_pass         http://127.0.0.1:$TEST_NGINX_MCP_PORT/mcp;
        proxy_http_version 1.1;
        proxy_buffering    off;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a deny, no token, a forged token, an outage: each let through and logged; the deny audited as a dry run
--- init
l1_ready() or diag('the worker did not learn the policy revision');
my $r = http_request('GET', '/dry/delete_repo', token => $main::dev);
is($r->{status}, 200, 'deny: let through to the content handler');
is($r->{headers}{'x-sark-decision'} // '', 'dry_run_deny', 'deny: $sark_decision says dry_run_deny');
$r = http_request('GET', '/dry/get_repo', token => $main::dev);
is("$r->{status} " . ($r->{headers}{'x-sark-decision'} // ''), '200 allow', 'allow: as usual');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("u-$main::N-dev"); @rows >= 2 });
my ($deny) = grep { ($_->{tool_name} // '') eq 'delete_repo' } @rows;
my ($allow) = grep { ($_->{tool_name} // '') eq 'get_repo' } @rows;
is($deny->{decision} // '', 'deny', 'the deny row says deny');
like($deny->{metadata} // '', qr/"dry_run": true/, 'and that it was a dry run');
unlike($allow->{metadata} // '', qr/dry_run/, 'an allow row is as usual');
is(http_request('GET', '/dry/get_repo')->{status}, 200, 'no token: let through');
is(http_request('GET', '/dry/get_repo', token => jwt(sub => 'x', wrong_secret => 1))->{status}, 200,
   'a forged token: let through');
stack('stop', 'opa');
is(http_request('GET', "/dry/outage_$main::N", token => $main::dev)->{status}, 200, 'an outage: let through');
stack('start', 'opa');
--- request
GET /dry/delete_repo
--- more_headers eval
"Authorization: Bearer $main::dev"
--- error_code: 200
--- error_log eval
[qr/sark: dry run: would have refused with 403 AZ-001/,
 qr/sark: dry run: would have refused with 401 AU-001/,
 qr/sark: dry run: would have refused with 401 AU-002/,
 qr/sark: dry run: would have refused with 503 OPA-001/]



=== TEST 2: an MCP location in dry run changes nothing: a denied tool answers, tools/list shows everything, arguments go as sent
--- init
my $r = main::mcp({ jsonrpc => '2.0', id => 1, method => 'initialize',
                    params => { protocolVersion => '2025-06-18', capabilities => {},
                                clientInfo => { name => 't', version => '1' } } });
my $sid = $r->{headers}{'mcp-session-id'};
main::mcp({ jsonrpc => '2.0', method => 'notifications/initialized' }, session => $sid);
$r = main::mcp({ jsonrpc => '2.0', id => 2, method => 'tools/list' }, session => $sid);
is(scalar @{ $r->{rpc}{result}{tools} || [] }, 13, 'tools/list: all 13 tools, unfiltered');
$r = main::mcp({ jsonrpc => '2.0', id => 3, method => 'tools/call',
                 params => { name => 'get-env', arguments => {} } }, session => $sid);
is($r->{status}, 200, 'a denied tool: let through');
ok(ref $r->{rpc}{result}, 'a denied tool: the server answered it');
$r = main::mcp({ jsonrpc => '2.0', id => 4, method => 'tools/call',
                 params => { name => 'echo', arguments => { message => 'as sent', api_key => 'k' } } },
               session => $sid);
is($r->{rpc}{result}{content}[0]{text} // '', 'Echo: as sent', 'arguments went as sent');
--- request
GET /dry/get_repo
--- more_headers eval
"Authorization: Bearer $main::dev"
--- error_code: 200
--- error_log
sark: dry run: would have refused with 403 AZ-001
