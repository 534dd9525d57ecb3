# tools/list through `sark_mcp on`: each caller sees only the tools its
# roles are granted (policies/data.json), in the real MCP server's SSE
# answer and in a plain JSON answer; one discover decision per list, cached
# and audited; a hidden tool is always refused on tools/call.  The answers
# the real server cannot be made to give (plain JSON, SSE with other events
# around the response, garbage) come from nginx `return` locations named
# "double-*" in the upstream server.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request l1_ready audit_rows_for poll_until
                        decode_json_or_undef);
use JSON::PP ();

repeat_each(1);
no_shuffle();

plan tests => 58;

our $N = nonce();
$ENV{TEST_NGINX_UP_PORT} = $ENV{TEST_NGINX_SERVER_PORT} + 12;
our $J = JSON::PP->new->canonical;

our %GRANTS = (
    guest   => [qw(echo get-tiny-image)],
    analyst => [qw(echo get-annotated-message get-structured-content get-sum
                   simulate-research-query)],
);
our @ALL = qw(echo get-annotated-message get-env get-resource-links
              get-resource-reference get-structured-content get-sum get-tiny-image
              gzip-file-as-resource toggle-simulated-logging toggle-subscriber-updates
              trigger-long-running-operation simulate-research-query);

sub token { my ($role, $who) = @_; jwt(sub => "u-$N-$who", email => "$who\@example.com", roles => [$role]) }

sub mcp {
    my ($token, $body, %opt) = @_;
    my %h = ('Content-Type' => 'application/json',
             'Accept' => 'application/json, text/event-stream');
    $h{'Mcp-Session-Id'} = $opt{session} if defined $opt{session};
    my $r = http_request('POST', $opt{path} // '/mcp/everything', token => $token,
                         headers => \%h, body => ref $body ? $J->encode($body) : $body,
                         port => $opt{port});
    my @data = $r->{body} =~ /^data: (.*)$/mg;
    $r->{events} = [ map { decode_json_or_undef($_) } @data ];
    $r->{rpc} = @data ? $r->{events}[-1] : $r->{json};
    return $r;
}

sub session {
    my ($token, %opt) = @_;
    my $r = mcp($token, { jsonrpc => '2.0', id => 1, method => 'initialize',
                          params => { protocolVersion => '2025-06-18', capabilities => {},
                                      clientInfo => { name => 't', version => '1' } } }, %opt);
    my $sid = $r->{headers}{'mcp-session-id'};
    mcp($token, { jsonrpc => '2.0', method => 'notifications/initialized' }, session => $sid, %opt);
    return $sid;
}

sub names { [ map { $_->{name} } @{ $_[0]{rpc}{result}{tools} || [] } ] }

our $LIST = { jsonrpc => '2.0', id => 2, method => 'tools/list' };

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config() . <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_UP_PORT;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MCP_PORT/mcp;
            proxy_http_version 1.1;
            proxy_buffering off;
        }
        location = /double-json {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env","x":[1,{"y":"]"}]},{"name":"echo","inputSchema":{"type":"object"}},{"name":"get-sum"}],"nextCursor":"c"}}';
        }
        location = /double-sse {
            default_type text/event-stream;
            return 200 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"before"}}\n\nevent: message\nid: e-2\ndata: {"jsonrpc":"2.0","id":2,\ndata: "result":{"tools":[{"name":"get-env"},{"name":"echo"}]}}\n\n: a comment\n\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"after"}}\n\n';
        }
        location = /double-other-id {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":9007199254740992,"result":{"tools":[{"name":"get-env"},{"name":"echo"}]}}';
        }
        location = /double-cr {
            default_type text/event-stream;
            return 200 '\xef\xbb\xbfevent: message\rdata: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env"},{"name":"echo"}]}}\r\r';
        }
        location = /double-mixed {
            default_type text/event-stream;
            return 200 'data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env"}]}}\r\n\ndata: {"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get-sum"},{"name":"echo"}]}}\n\r\n';
        }
        location = /double-cut {
            default_type text/event-stream;
            return 200 'event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env"}]}}\n';
        }
        location = /double-broken-event {
            default_type text/event-stream;
            return 200 'data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env"}\n\n';
        }
        location = /double-error {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no tools here"}}';
        }
        location = /double-garbage {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":2,"result":{"tools":[';
        }
        location = /double-gzip {
            default_type text/event-stream;
            add_header Content-Encoding gzip;
            return 200 'event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-env"}]}}\n\n';
        }
        location = /double-unnamed {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"title":"no name"}]}}';
        }
    }
_EOC_
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }

    location /mcp/everything {
        sark_mcp          on;
        sark_authz_server everything;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_UP_PORT/;
        proxy_http_version 1.1;
        proxy_buffering   off;
    }
    location ~ ^/mcp/(?<double>double-[a-z-]+)$ {
        sark_mcp          on;
        sark_authz_server everything;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_UP_PORT/$double;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: the real server's SSE answer: each role sees its granted tools, every other byte unchanged; hidden tools are refused on call; one cached discover decision per list
--- init
l1_ready() or diag('the worker did not learn the policy revision');

# what the server lists to everyone, asked directly
my $direct_port = $ENV{TEST_NGINX_UP_PORT};
my $sid0 = main::session(undef, port => $direct_port, path => '/');
my $direct = main::mcp(undef, $main::LIST, session => $sid0, port => $direct_port, path => '/');
is_deeply([ sort @{ main::names($direct) } ], [ sort @main::ALL ], 'directly, the server lists its 13 tools');

for my $role (qw(guest analyst)) {
    my $t = main::token($role, $role);
    my $sid = main::session($t);
    my $r = main::mcp($t, $main::LIST, session => $sid);
    is($r->{status}, 200, "$role: tools/list 200");
    like($r->{headers}{'content-type'} // '', qr{^text/event-stream}, "$role: still an SSE answer");
    like($r->{body}, qr/\Aevent: message\nid: [^\n]+\ndata: /, "$role: the event's lines before its data kept");
    is_deeply(main::names($r), $main::GRANTS{$role}, "$role: sees exactly its granted tools, in the server's order");

    # the rest of the answer is the server's: the tool objects and the envelope
    my %want = map { $_ => 1 } @{ $main::GRANTS{$role} };
    my $expect = $main::J->decode($main::J->encode($direct->{rpc}));
    $expect->{result}{tools} = [ grep { $want{$_->{name}} } @{ $expect->{result}{tools} } ];
    is($main::J->encode($r->{rpc}), $main::J->encode($expect), "$role: every other part of the answer unchanged");

    # consistency: every hidden tool is refused on call; a shown one works
    my @hidden = grep { !$want{$_} } @main::ALL;
    my @wrong = grep { main::mcp($t, { jsonrpc => '2.0', id => 3, method => 'tools/call',
                                       params => { name => $_, arguments => {} } },
                                 session => $sid)->{status} != 403 } @hidden;
    is("@wrong", '', "$role: each of the " . @hidden . " hidden tools is refused on tools/call");
    my $echo = main::mcp($t, { jsonrpc => '2.0', id => 4, method => 'tools/call',
                               params => { name => 'echo', arguments => { message => $role } } },
                         session => $sid);
    is($echo->{rpc}{result}{content}[0]{text} // '', "Echo: $role", "$role: a shown tool answers");

    # the same list again is an L1 hit: two discover rows, the second from L1
    main::mcp($t, $main::LIST, session => $sid);
    my @rows;
    poll_until(10, sub { @rows = grep { $_->{action} eq 'gateway:tool:discover' } audit_rows_for("u-$main::N-$role"); @rows >= 2 });
    is(scalar @rows, 2, "$role: one discover decision per list");
    like($rows[0]{metadata} // '', qr/"mcp_method": "tools\/list"/, "$role: audited as tools/list");
    is($rows[1]{cache_layer} // '', 'L1', "$role: the second list is answered from L1");
}
--- request
GET /mcp/everything
--- error_code: 401
--- no_error_log
[alert]



=== TEST 2: answers the real server cannot be made to give: plain JSON, SSE with other events, an error response, garbage; an outage
--- init
my $t = main::token('guest', 'g2');

my $r = main::mcp($t, $main::LIST, path => '/mcp/double-json');
is($r->{status}, 200, 'JSON answer: 200');
is($r->{body}, '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}],"nextCursor":"c"}}',
   'JSON answer: only echo, every other byte as the upstream sent it');
ok(!defined $r->{headers}{'content-length'} || $r->{headers}{'content-length'} == length $r->{body},
   'JSON answer: no stale Content-Length');

$r = main::mcp($t, $main::LIST, path => '/mcp/double-sse');
my @events = split /\n\n/, $r->{body};
is(scalar @events, 4, 'SSE answer: four events') or diag($r->{body});
is($events[0], 'event: message' . "\n" . 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"before"}}',
   'SSE answer: the event before the response unchanged');
is($events[1], 'event: message' . "\n" . 'id: e-2' . "\n" . 'data: {"jsonrpc":"2.0","id":2,' . "\n" . 'data: "result":{"tools":[{"name":"echo"}]}}',
   'SSE answer: the response (data on two lines) filtered, its other lines kept');
is($events[2], ': a comment', 'SSE answer: a comment unchanged');
like($events[3], qr/"data":"after"/, 'SSE answer: the event after the response unchanged');

# the GET stream (a server may send a tool list again there when a client
# resumes with Last-Event-ID) is filtered as well
$r = main::http_request('GET', '/mcp/double-sse', token => $t, headers => { Accept => 'text/event-stream' });
unlike($r->{body}, qr/get-env/, 'GET stream: the hidden tool is filtered out');
like($r->{body}, qr/"name":"echo"/, 'GET stream: the shown one stays');
# a GET answered with JSON (not what the spec says; read all the same)
$r = main::http_request('GET', '/mcp/double-json', token => $t);
unlike($r->{body}, qr/get-env/, 'GET answered with JSON: the hidden tool is filtered out');
like($r->{body}, qr/"name":"echo"/, 'GET answered with JSON: the shown one stays');

# a tool list under another id is filtered all the same
$r = main::mcp($t, $main::LIST, path => '/mcp/double-other-id');
is($r->{body}, '{"jsonrpc":"2.0","id":9007199254740992,"result":{"tools":[{"name":"echo"}]}}',
   'a tool list under another id: filtered');

# lines ending in CR alone, a leading BOM, CRLF then LF: events as SSE reads them
$r = main::mcp($t, $main::LIST, path => '/mcp/double-cr');
unlike($r->{body}, qr/get-env/, 'CR line endings and a BOM: filtered');
like($r->{body}, qr/"name":"echo"/, 'CR line endings and a BOM: the shown tool stays');
$r = main::mcp($t, $main::LIST, path => '/mcp/double-mixed');
unlike($r->{body}, qr/get-env|get-sum/, 'CRLF, LF and CR mixed: both lists filtered');
is(scalar(() = $r->{body} =~ /"name":"echo"/g), 1, 'CRLF, LF and CR mixed: the shown tool stays');

# an event not ended by an empty line never goes out; data that may be a
# tool list and is not JSON is an error
$r = main::mcp($t, $main::LIST, path => '/mcp/double-cut');
unlike($r->{body}, qr/get-env/, 'an incomplete last event is dropped');
$r = main::mcp($t, $main::LIST, path => '/mcp/double-broken-event');
unlike($r->{body}, qr/get-env/, 'a broken event with "tools": not passed');
is($r->{rpc}{error}{code} // 0, -32603, 'a broken event with "tools": an error in its place');

$r = main::mcp($t, $main::LIST, path => '/mcp/double-error');
is($r->{body}, '{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no tools here"}}',
   'an error response passes unchanged');

for my $bad (qw(double-garbage double-unnamed double-gzip)) {
    $r = main::mcp($t, $main::LIST, path => "/mcp/$bad");
    is($r->{rpc}{id} // '', 2, "$bad: a JSON-RPC answer for the request's id");
    is($r->{rpc}{error}{code} // 0, -32603, "$bad: an error instead of an unfiltered list");
    unlike($r->{body}, qr/"tools"/, "$bad: no tool list goes out");
}

# no decision to be had for the list (OPA stopped; the request itself was
# allowed before, and is answered from L1): an error, never the list
my $t3 = main::token('guest', 'g3');
main::mcp($t3, $main::LIST, path => '/mcp/double-error');
main::stack('stop', 'opa');
$r = main::mcp($t3, $main::LIST, path => '/mcp/double-json');
is($r->{json}{error}{code} // 0, -32603, 'outage: an error instead of the list');
unlike($r->{body}, qr/get-env/, 'outage: no tool name goes out');
main::stack('start', 'opa');
--- request
GET /mcp/everything
--- error_code: 401
--- error_log
sark: refused to pass the upstream's tool list
--- no_error_log
[alert]
