# MCP-aware enforcement (`sark_mcp on`) in front of the real MCP server
# (server-everything, started by make t): each JSON-RPC message is decided
# by what it asks; a refused one never reaches the upstream; an allowed one
# reaches it with its body intact, or with the arguments the policy
# filtered, and X-Sark-Audit-Id.  Between the gateway and the MCP server
# sits a plain nginx proxy (the "sink") that logs what the upstream got:
# method, X-Sark-Audit-Id, Mcp-Session-Id and the body.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request l1_ready audit_rows_for poll_until
                        raw_exchange parse_raw_response decode_json_or_undef);
use JSON::PP ();
use Time::HiRes ();

repeat_each(1);
no_shuffle();

plan tests => 197;

our $N = nonce();
$ENV{TEST_NGINX_SINK_PORT} = $ENV{TEST_NGINX_SERVER_PORT} + 11;
our $SINK_LOG = html_dir() . '/../logs/sink.log';
our $J = JSON::PP->new->canonical;

our $guest = jwt(sub => "u-$N-guest", email => 'g@example.com', roles => ['guest']);
our $admin = jwt(sub => "u-$N-admin", email => 'adm@example.com', roles => ['admin']);
our $other = jwt(sub => "u-$N-other", email => 'o@example.com', roles => ['guest']);

# what the upstream received, one hash per request, oldest first
sub sink {
    open my $fh, '<', $SINK_LOG or return ();
    return map { decode_json_or_undef($_) // { bad => $_ } } <$fh>;
}

# how many requests the upstream has had, once no log line has come for
# 100 ms (one for a request answered a moment ago may still be on its way)
sub sink_count {
    my $n = scalar(my @l = sink());
    while (1) {
        Time::HiRes::sleep(0.1);
        my $m = scalar(my @k = sink());
        return $m if $m == $n;
        $n = $m;
    }
}

# sink() once it holds at least N more requests than BEFORE (nginx writes
# the upstream's log line after its answer has gone, so it may lag the
# client by a moment), at most 3 s
sub sink_since {
    my ($before, $n) = @_;
    poll_until(3, sub { scalar(my @l = sink()) >= $before + $n });
    return sink();
}

# one MCP POST; the JSON-RPC answer (plain JSON, or the data of the SSE
# event) in {rpc}
sub mcp {
    my ($token, $body, %opt) = @_;
    my %h = ('Content-Type' => 'application/json',
             'Accept' => 'application/json, text/event-stream',
             %{ $opt{headers} || {} });
    delete $h{$_} for grep { $h{$_} eq '' } keys %h;
    $h{'Mcp-Session-Id'} = $opt{session} if defined $opt{session};
    my $r = http_request($opt{method} // 'POST', $opt{path} // '/mcp/everything',
                         token => $token, headers => \%h,
                         body => ref $body ? $J->encode($body) : $body);
    if (($r->{headers}{'content-type'} // '') =~ m{^text/event-stream}) {
        my @data = $r->{body} =~ /^data: (.*)$/mg;
        $r->{rpc} = decode_json_or_undef($data[-1]) if @data;
    } else {
        $r->{rpc} = $r->{json};
    }
    return $r;
}

sub initialize {
    my ($token) = @_;
    my $r = mcp($token, { jsonrpc => '2.0', id => 1, method => 'initialize',
                          params => { protocolVersion => '2025-06-18', capabilities => {},
                                      clientInfo => { name => 't', version => '1' } } });
    my $sid = $r->{headers}{'mcp-session-id'};
    mcp($token, { jsonrpc => '2.0', method => 'notifications/initialized' }, session => $sid)
        if defined $sid;
    return ($r, $sid);
}

sub call {
    my ($id, $tool, $args) = @_;
    return { jsonrpc => '2.0', id => $id, method => 'tools/call',
             params => { name => $tool, defined $args ? (arguments => $args) : () } };
}

# a refusal: status, JSON-RPC error code and id, SARK code, and nothing
# reached the upstream
sub refused {
    my ($what, $r, $status, $rpc_code, $id, $code, $before) = @_;
    my $e = $r->{json} && ref $r->{json}{error} ? $r->{json}{error} : {};
    my $ok = $r->{status} == $status
             && ($r->{json}{jsonrpc} // '') eq '2.0'
             && ($e->{code} // 0) == $rpc_code
             && $J->encode([$r->{json}{id}]) eq $J->encode([$id])
             && ($e->{data}{code} // '') eq $code
             && ($r->{headers}{'content-type'} // '') eq 'application/json';
    ok($ok, "$what: $status, JSON-RPC error $rpc_code ($code) for id "
            . $J->encode([$id]))
        or diag("got $r->{status}: $r->{body}");
    Time::HiRes::sleep(0.1);
    is(sink_count() - $before, 0, "$what: nothing reached the upstream");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config() . <<'_EOC_');
    log_format sink escape=json '{"method":"$request_method","audit":"$http_x_sark_audit_id",'
                                '"session":"$http_mcp_session_id","length":"$content_length",'
                                '"body":"$request_body"}';
    server {
        listen 127.0.0.1:$TEST_NGINX_SINK_PORT;
        access_log logs/sink.log sink;
        client_body_buffer_size 2m;
        location = /accept-any {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":5,"result":{}}';
        }
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MCP_PORT/mcp;
            proxy_http_version 1.1;
            proxy_buffering off;
        }
    }
_EOC_
    $block->set_value(config => <<'_EOC_');
    sark_resource_metadata http://127.0.0.1/.well-known/oauth-protected-resource/mcp/everything;

    location = /api/v1/gateway/authorize { sark_api authorize; }

    location /mcp/everything {
        sark_mcp          on;
        sark_authz_server everything;
        sark_mcp_max_body 64k;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
        proxy_http_version 1.1;
        proxy_buffering   off;
    }

    # flow-changing directives on MCP locations: a refusal stays final
    location /mcp/tf { sark_mcp on; sark_authz_server everything;
                       try_files $uri @open; }
    location /mcp/ep { sark_mcp on; sark_authz_server everything;
                       error_page 400 401 403 413 503 = @open;
                       proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
    location /mcp/eu { sark_mcp on; sark_authz_server everything;
                       error_page 400 401 403 413 503 /open/x;
                       proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
    location /mcp/mi { sark_mcp on; sark_authz_server everything;
                       mirror /mirror-to;
                       proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
    location /mcp/pa { sark_mcp on; sark_authz_server everything;
                       post_action @open;
                       proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
    # CORS for browser clients, as README shows: the preflight (which
    # carries no token) answered by nginx before the access phase
    location /mcp/cors {
        if ($request_method = OPTIONS) {
            add_header Access-Control-Allow-Origin https://app.example always;
            add_header Access-Control-Allow-Methods "POST, GET, DELETE" always;
            add_header Access-Control-Allow-Headers "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID" always;
            add_header Access-Control-Max-Age 600 always;
            return 204;
        }
        sark_mcp on; sark_authz_server everything;
        add_header Access-Control-Allow-Origin https://app.example always;
        add_header Access-Control-Expose-Headers "Mcp-Session-Id, MCP-Protocol-Version" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
        proxy_http_version 1.1;
        proxy_buffering   off;
    }
    # an upstream that takes any session id
    location = /mcp/acc {
        sark_mcp          on;
        sark_authz_server everything;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_SINK_PORT/accept-any;
    }

    # an enforced (not MCP) location in front of the same upstream
    location /enforced/ {
        sark_authz        on;
        sark_authz_action gateway:tool:invoke;
        sark_authz_server everything;
        sark_authz_tool   echo;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_SINK_PORT/;
    }
    location @open   { proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT; }
    location /open/  { proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
    location = /mirror-to { internal; proxy_pass http://127.0.0.1:$TEST_NGINX_SINK_PORT/; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: initialize, allowed and denied tools/call, filtered arguments, batches, sessions bound to their subject, and the audit trail
--- init
l1_ready() or diag('the worker did not learn the policy revision');

# initialize: the session id comes back; the upstream saw one audit id
my $before = main::sink_count();
my ($r, $sid) = main::initialize($main::guest);
is($r->{status}, 200, 'initialize: 200');
ok(defined $sid && length $sid, 'initialize: the MCP server handed out a session id');
is($r->{rpc}{result}{serverInfo}{name} // '', 'mcp-servers/everything', 'initialize: the real server answered');
my @seen = main::sink_since($before, 2);
is(scalar(@seen) - $before, 2, 'initialize and notifications/initialized reached the upstream');
like($seen[$before]{audit}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
     'the upstream got X-Sark-Audit-Id');
is($seen[$before + 1]{session}, $sid, 'Mcp-Session-Id passed upstream');

# an allowed call: the server's real answer, the body intact
my $body = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi there"}}}';
$before = main::sink_count();
$r = main::mcp($main::guest, $body, session => $sid);
is($r->{status}, 200, 'allowed tools/call: 200');
is($r->{rpc}{id}, 7, 'allowed tools/call: the answer has the request id');
is($r->{rpc}{result}{content}[0]{text} // '', 'Echo: hi there', 'allowed tools/call: the real tool answered');
@seen = main::sink_since($before, 1);
is($seen[-1]{body}, $body, 'allowed tools/call: the body reached the upstream byte for byte') or diag(explain(\@seen));
my $call_audit = $seen[-1]{audit};

# a denied call: 403, the id, the reason; nothing upstream
$before = main::sink_count();
$r = main::mcp($main::guest, main::call('x-1', 'get-env', {}), session => $sid);
main::refused('denied tools/call', $r, 403, -32003, 'x-1', 'AZ-001', $before);
like($r->{json}{error}{message} // '', qr/^Denied/, 'denied tools/call: the policy\'s reason');
my $denied_audit = $r->{json}{error}{data}{audit_id};
like($denied_audit // '', qr/^[0-9a-f-]{36}$/, 'denied tools/call: the audit id of the decision');

# the policy filters secrets out of arguments: the upstream gets them
# filtered, every other byte of the body as it was sent
my $args = '{ "message": "m", "api_key": "s3cret-' . $main::N . '" }';
$body = '{"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "echo", "arguments": ' . $args . '}}';
(my $want = $body) =~ s/\Q$args\E/{"message":"m"}/;
$before = main::sink_count();
$r = main::mcp($main::guest, $body, session => $sid);
is($r->{status}, 200, 'filtered tools/call: 200') or diag($r->{body});
is($r->{rpc}{result}{content}[0]{text} // '', 'Echo: m', 'filtered tools/call: the real tool answered');
@seen = main::sink_since($before, 1);
is(scalar(@seen) - $before, 1, 'filtered tools/call: one request upstream');
is($seen[-1]{body}, $want, 'filtered tools/call: the upstream got the filtered arguments, the rest unchanged');
is($seen[-1]{length}, length($want), 'filtered tools/call: Content-Length is the new length');

# a batch with one denied element is refused whole
$before = main::sink_count();
$r = main::mcp($main::guest, [ { jsonrpc => '2.0', id => 'p', method => 'ping' },
                               main::call('b2', 'get-env', {}) ], session => $sid);
main::refused('batch with a denied element', $r, 403, -32003, 'b2', 'AZ-001', $before);

# an allowed batch goes upstream whole, one audit id per message
$before = main::sink_count();
$r = main::mcp($main::guest, [ { jsonrpc => '2.0', method => 'notifications/progress',
                                 params => { progressToken => 1, progress => 1 } },
                               { jsonrpc => '2.0', method => 'notifications/cancelled',
                                 params => { requestId => 99 } } ], session => $sid);
@seen = main::sink_since($before, 1);
is(scalar(@seen) - $before, 1, 'allowed batch: reached the upstream');
like($seen[-1]{audit}, qr/^[0-9a-f-]{36},[0-9a-f-]{36}$/, 'allowed batch: an audit id per message');

# the session belongs to the guest: another subject is refused with it
$before = main::sink_count();
$r = main::mcp($main::other, main::call(3, 'echo', { message => 'x' }), session => $sid);
main::refused('another subject with the session', $r, 403, -32003, undef, 'AZ-004', $before);
$r = main::mcp($main::admin, main::call(3, 'echo', { message => 'x' }), session => $sid);
is($r->{status}, 403, 'even an admin cannot use a session handed to someone else');
$r = main::mcp($main::guest, main::call(4, 'echo', { message => 'still mine' }), session => $sid);
is($r->{rpc}{result}{content}[0]{text} // '', 'Echo: still mine', 'the owner still uses it');

# an id the gateway never saw (nginx restarted, another gateway host) is
# bound to the first subject whose request the upstream accepts with it
# (/mcp/acc: an upstream that takes any session)
my $made_up = "made-up-$main::N";
$r = main::mcp($main::other, { jsonrpc => '2.0', id => 5, method => 'ping' }, session => $made_up,
               path => '/mcp/acc');
is($r->{status}, 200, 'an unknown session id the upstream accepts: answered');
$r = main::mcp($main::guest, { jsonrpc => '2.0', id => 5, method => 'ping' }, session => $made_up,
               path => '/mcp/acc');
is($r->{status}, 403, 'then it is the first subject\'s: refused for another');
# a refused request, or one the upstream refuses, binds nothing
my $squat = "squat-$main::N";
$r = main::mcp($main::other, main::call(6, 'get-env', {}), session => $squat);
is($r->{status}, 403, 'a denied call naming an unknown session id');
$r = main::mcp($main::other, main::call(6, 'echo', { message => 'x' }), session => $squat, method => 'PUT');
is($r->{status}, 405, 'a PUT naming it');
$r = main::mcp($main::other, { jsonrpc => '2.0', id => 7, method => 'ping' }, session => $squat);
ok($r->{status} >= 400 && $r->{status} != 403, "an allowed ping the real upstream refuses ($r->{status}): it does not know the id");
$r = main::mcp($main::guest, { jsonrpc => '2.0', id => 7, method => 'ping' }, session => $squat, path => '/mcp/acc');
is($r->{status}, 200, 'none of them bound it: another subject may still have it');

# every decision is audited with the tool and the JSON-RPC method
my @rows;
poll_until(10, sub {
    @rows = audit_rows_for("u-$main::N-guest");
    (grep { $_->{id} eq $call_audit } @rows) && (grep { $_->{id} eq $denied_audit } @rows);
});
my ($call_row) = grep { $_->{id} eq $call_audit } @rows;
ok($call_row, 'the allowed call has an audit row under the id the upstream got') or diag(explain(\@rows), $call_audit);
is($call_row->{tool_name} // '', 'echo', 'audit: tool name');
is($call_row->{action} // '', 'gateway:tool:invoke', 'audit: action');
is($call_row->{server_name} // '', 'everything', 'audit: server');
like($call_row->{metadata} // '', qr/"mcp_method": "tools\/call"/, 'audit: the JSON-RPC method');
my ($deny_row) = grep { $_->{id} eq $denied_audit } @rows;
is($deny_row->{decision} // '', 'deny', 'the denied call is audited as deny');
my @init = grep { ($_->{metadata} // '') =~ /"mcp_method": "initialize"/ } audit_rows_for("u-$main::N-guest");
is(scalar @init, 1, 'initialize is audited as access to the server');
--- request
GET /mcp/everything
--- error_code: 401
--- response_headers_like
WWW-Authenticate: Bearer realm="sark", resource_metadata="http://127.0.0.1/\.well-known/oauth-protected-resource/mcp/everything"
--- response_body_like: ^\{"jsonrpc":"2.0","id":null,"error":\{"code":-32001,"message":"missing bearer token"
--- no_error_log
[alert]



=== TEST 2: bad input: each a clear 4xx JSON-RPC error, and nothing reaches the upstream
--- init
my $g = $main::guest;
my (undef, $sid) = main::initialize($g);
my @cases = (
    ['malformed JSON', '{"jsonrpc":"2.0","id":1,"method":"ping"', 400, -32700, undef],
    ['trailing garbage', '{"jsonrpc":"2.0","id":1,"method":"ping"} x', 400, -32700, undef],
    ['empty body', '', 400, -32600, undef],
    ['not an object', '"ping"', 400, -32600, undef],
    ['wrong jsonrpc version', '{"jsonrpc":"1.0","id":2,"method":"ping"}', 400, -32600, 2],
    ['jsonrpc a number', '{"jsonrpc":2.0,"id":2,"method":"ping"}', 400, -32600, 2],
    ['no method, no result', '{"jsonrpc":"2.0","id":3}', 400, -32600, 3],
    ['method not a string', '{"jsonrpc":"2.0","id":3,"method":7}', 400, -32600, 3],
    ['id an object', '{"jsonrpc":"2.0","id":{},"method":"ping"}', 400, -32600, undef],
    ['params an array', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":["echo"]}', 400, -32602, 4],
    ['params.name a number', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":5}}', 400, -32602, 4],
    ['params.name missing', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{}}', 400, -32602, 4],
    ['params.name empty', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":""}}', 400, -32602, 4],
    ['arguments a string', '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":"x"}}', 400, -32602, 'a'],
    ['tools/call without id', '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}', 400, -32600, undef],
    ['resources/read without uri', '{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{}}', 400, -32602, 5],
    ['prompts/get without name', '{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":1}}', 400, -32602, 5],
    ['empty batch', '[]', 400, -32600, undef],
    ['batch of 65', '[' . join(',', map { qq({"jsonrpc":"2.0","id":$_,"method":"ping"}) } 1 .. 65) . ']', 400, -32600, undef],
    ['batch with a bad element', '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2}]', 400, -32600, 2],
    ['tools/list in a batch', '[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]', 400, -32600, 1],
    ['duplicate member', '{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}', 400, -32700, undef],
    ['deeply nested', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":'
                      . ('[' x 40) . (']' x 40) . '}}}', 400, -32700, undef],
    ['over sark_mcp_max_body', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"'
                               . ('x' x 70000) . '"}}}', 413, -32600, undef],
);
for my $c (@cases) {
    my ($what, $body, $status, $code, $id) = @$c;
    my $before = main::sink_count();
    my $r = main::mcp($g, $body);
    my $sark = $status == 413 ? 'GW-413' : 'GW-100';
    main::refused($what, $r, $status, $code, $id, $sark, $before);
}

# chunked bodies: read whole, passed on with a length; too long is 413
my $msg = '{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"echo","arguments":{"message":"chunked"}}}';
my $head = "POST /mcp/everything HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Authorization: Bearer $g\r\nContent-Type: application/json\r\n"
         . "Accept: application/json, text/event-stream\r\nMcp-Session-Id: $sid\r\n"
         . "Transfer-Encoding: chunked\r\n\r\n";
my @parts = map { sprintf("%x\r\n%s\r\n", length $_, $_) } (substr($msg, 0, 20), substr($msg, 20));
my $before = main::sink_count();
my $r = parse_raw_response(raw_exchange([$head . $parts[0], $parts[1] . "0\r\n\r\n"]));
is($r->{status}, 200, 'chunked body: allowed');
my @seen = main::sink_since($before, 1);
is($seen[-1]{body} // '', $msg, 'chunked body: reached the upstream whole');
is($seen[-1]{length} // '', length $msg, 'chunked body: with its length');
my $big = sprintf("%x\r\n%s\r\n", 70000, 'x' x 70000);
$before = main::sink_count();
$r = parse_raw_response(raw_exchange([$head . $parts[0], $big . "0\r\n\r\n"]));
is($r->{status}, 413, 'chunked body over the limit: 413');
like($r->{body}, qr/"code":-32600/, 'chunked body over the limit: a JSON-RPC error');
Time::HiRes::sleep(0.1);
is(main::sink_count() - $before, 0, 'chunked body over the limit: nothing upstream');

# a GET or DELETE with a body (it would go upstream unread); two sessions
for my $m (qw(GET DELETE)) {
    $before = main::sink_count();
    $r = main::mcp($g, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env"}}', method => $m);
    main::refused("$m with a body", $r, 400, -32600, undef, 'GW-100', $before);
}
$before = main::sink_count();
$r = parse_raw_response(raw_exchange(["POST /mcp/everything HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Authorization: Bearer $g\r\nContent-Type: application/json\r\nMcp-Session-Id: $sid\r\n"
    . "Mcp-Session-Id: another\r\nContent-Length: 40\r\n\r\n" . '{"jsonrpc":"2.0","id":1,"method":"ping"} ']));
is($r->{status}, 400, 'two Mcp-Session-Id headers: 400');
like($r->{body}, qr/one MCP session at most/, 'two Mcp-Session-Id headers: says why');
Time::HiRes::sleep(0.1);
is(main::sink_count() - $before, 0, 'two Mcp-Session-Id headers: nothing upstream');

# the upstream must read the body as sark does: UTF-8 JSON, not compressed
for my $c (['a UTF-7 body', { 'Content-Type' => 'application/json; charset=utf-7' }],
           ['no Content-Type', { 'Content-Type' => '' }],
           ['text/plain', { 'Content-Type' => 'text/plain' }],
           ['a compressed body', { 'Content-Encoding' => 'gzip' }],
           ['identity, then gzip', { 'Content-Encoding' => ['identity', 'gzip'] }]) {
    my ($what, $h) = @$c;
    $before = main::sink_count();
    $r = main::mcp($g, '{"jsonrpc":"2.0","id":1,"method":"ping","x":"+ACI-,+ACI-method+ACI-:+ACI-tools/call+ACI-"}',
                   headers => $h);
    main::refused($what, $r, 415, -32600, undef, 'GW-415', $before);
}
$r = main::mcp($g, '{"jsonrpc":"2.0","id":1,"method":"ping"}', session => $sid,
               headers => { 'Content-Type' => 'application/json; charset="UTF-8"' });
isnt($r->{status}, 415, 'charset=UTF-8 is accepted');

# methods other than POST, GET and DELETE; tokens that are not valid
$before = main::sink_count();
$r = main::mcp($g, '', method => 'PUT');
main::refused('PUT', $r, 405, -32600, undef, 'GW-101', $before);
is($r->{headers}{allow} // '', 'GET, POST, DELETE', 'PUT: Allow names the MCP methods');
$before = main::sink_count();
$r = main::mcp(jwt(sub => "u-$main::N-forged", roles => ['admin'], wrong_secret => 1), main::call(1, 'echo', {}));
main::refused('forged token', $r, 401, -32001, undef, 'AU-002', $before);
$before = main::sink_count();
$r = main::mcp(jwt(sub => "u-$main::N-old", roles => ['admin'], expired => 1), main::call(1, 'echo', {}));
main::refused('expired token', $r, 401, -32001, undef, 'AU-003', $before);
--- request
POST /mcp/everything
--- more_headers eval
"Authorization: Bearer $main::guest\nContent-Type: application/json"
--- request_body: {"jsonrpc":"2.0","id":1,"method":"ping"
--- error_code: 400
--- no_error_log
[alert]



=== TEST 3: try_files, error_page (named and URI), mirror and post_action on an MCP location do not turn a refusal (denied, no token, forged token, malformed, outage) into an upstream request; an outage is 503 with Retry-After
--- init
our @FLOW = ('/mcp/tf/x', '/mcp/ep/x', '/mcp/eu/x', '/mcp/mi/x', '/mcp/pa/x');
my $forged = jwt(sub => "u-$main::N-forged", roles => ['admin'], wrong_secret => 1);
for my $path (@FLOW) {
    my $before = main::sink_count();
    my $r = main::mcp($main::guest, main::call('t', 'get-env', {}), path => $path);
    main::refused("$path denied", $r, 403, -32003, 't', 'AZ-001', $before);
    $before = main::sink_count();
    $r = main::mcp(undef, main::call('t', 'echo', {}), path => $path);
    main::refused("$path no token", $r, 401, -32001, undef, 'AU-001', $before);
    $before = main::sink_count();
    $r = main::mcp($forged, main::call('t', 'echo', {}), path => $path);
    main::refused("$path forged token", $r, 401, -32001, undef, 'AU-002', $before);
    $before = main::sink_count();
    $r = main::mcp($main::guest, '{', path => $path);
    main::refused("$path malformed", $r, 400, -32700, undef, 'GW-100', $before);
}
my $before = main::sink_count();
my $r = main::mcp($main::guest, { jsonrpc => '2.0', id => 1, method => 'ping' }, path => '/mcp/tf/x');
is(scalar(main::sink_since($before, 1)) - $before, 1, 'try_files: an allowed request goes on');

main::stack('stop', 'opa');
for my $path ('/mcp/everything', @FLOW) {
    $before = main::sink_count();
    $r = main::mcp($main::guest, main::call('o', 'echo', { message => "outage-$main::N-$path" }), path => $path);
    main::refused("$path outage", $r, 503, -32000, 'o', 'OPA-001', $before);
}
ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/, 'outage: Retry-After');
main::stack('start', 'opa');
--- request
GET /mcp/everything
--- error_code: 401
--- no_error_log
[alert]



=== TEST 4: CORS: without configuration a preflight is refused (401: it has no token); with the preflight answered in the location (README) it is 204 and never reaches the upstream, while every other method is still decided
--- init
my $pre = { Origin => 'https://app.example', 'Access-Control-Request-Method' => 'POST',
            'Access-Control-Request-Headers' => 'authorization, content-type, mcp-session-id' };
my $before = main::sink_count();
my $r = http_request('OPTIONS', '/mcp/everything', headers => $pre);
is($r->{status}, 401, 'no CORS configuration: a preflight (no token) is 401') or diag("$r->{status} $r->{body}");
$r = http_request('OPTIONS', '/mcp/cors', headers => $pre);
is($r->{status}, 204, 'the preflight: 204');
is($r->{headers}{'access-control-allow-origin'} // '', 'https://app.example', 'its allowed origin');
like($r->{headers}{'access-control-allow-headers'} // '', qr/Authorization.*Mcp-Session-Id/, 'its allowed headers');
is(main::sink_count() - $before, 0, 'no preflight reached the upstream');
$before = main::sink_count();
$r = main::mcp(undef, main::call('c', 'echo', { message => 'cors' }), path => '/mcp/cors',
               headers => { Origin => 'https://app.example' });
main::refused('a POST without a token', $r, 401, -32001, undef, 'AU-001', $before);
is($r->{headers}{'access-control-allow-origin'} // '', 'https://app.example', 'the refusal carries the origin (the browser can read it)');
$before = main::sink_count();
$r = main::mcp($main::guest, main::call('c', 'get-env', {}), path => '/mcp/cors');
main::refused('a denied call', $r, 403, -32003, 'c', 'AZ-001', $before);
$before = main::sink_count();
$r = main::mcp($main::guest, { jsonrpc => '2.0', id => 2, method => 'initialize',
                               params => { protocolVersion => '2025-06-18', capabilities => {},
                                           clientInfo => { name => 't', version => '1' } } },
               path => '/mcp/cors');
is($r->{status}, 200, 'an allowed initialize: 200') or diag($r->{body});
is(scalar(main::sink_since($before, 1)) - $before, 1, 'and it reached the upstream');
--- request
GET /mcp/everything
--- error_code: 401



=== TEST 5: an enforced location: a client's X-Sark-Audit-Id reaches the upstream as the decision's audit id, never as written
--- init
my $before = main::sink_count();
my $r = http_request('GET', '/enforced/x', token => $main::guest, headers => { 'X-Sark-Audit-Id' => 'forged-by-client' });
my @seen = main::sink_since($before, 1);
is($r->{status} == 401 ? 'refused' : 'passed', 'passed', 'allowed: on to the upstream') or diag($r->{body});
like($seen[-1]{audit} // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
     'the upstream got an audit id, not the client\'s text');
--- request
GET /mcp/everything
--- error_code: 401
