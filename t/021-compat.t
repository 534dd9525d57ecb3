# sark_api_compat sark: the same requests answered as our documented API
# (the default) and as the Python SARK's clients expect them: {"detail"}
# errors, 422 for bodies that do not validate, server_name and tool_name
# optional, an outage as 200 "allow": false with cache_ttl 0 (audited as a
# deny), and filtered_parameters always present (null on a deny).
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request poll_until audit_rows_for);

repeat_each(1);
no_shuffle();

plan tests => 79;

our $N = nonce();
our $KEY = 'dev-gateway-key-0123456789abcdef';

sub token { jwt(sub => "c-$N-$_[0]", email => "$_[0]\@example.com", roles => [$_[1]]) }

# ask(PATH, BODY, %opt): the answer of both locations, default first
sub both {
    my ($body, %opt) = @_;
    return map { authorize($body, path => $_, %opt) }
        ('/api/v1/gateway/authorize', '/sark/api/v1/gateway/authorize');
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<"_EOC_");
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/gateway/audit { sark_api audit; sark_gateway_key $main::KEY; }
    location /sark/ {
        sark_api_compat sark;
        location = /sark/api/v1/gateway/authorize { sark_api authorize; }
        location = /sark/api/v1/gateway/audit { sark_api audit; sark_gateway_key $main::KEY; }
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a body that does not validate: 400 GW-100 by default, FastAPI's 422 {"detail": [...]} in compat
--- init
my $t = main::token('analyst', 'analyst');
my @cases = (
    ['missing action', '{"server_name":"s"}', 'missing', ['body', 'action'], 'missing required field "action"'],
    ['action of the wrong type', '{"action":7}', 'value_error', ['body', 'action'], 'field "action" must be a string'],
    ['parameters not an object', '{"action":"gateway:tool:invoke","parameters":[1]}', 'value_error', ['body', 'parameters'],
     'field "parameters" must be an object'],
    ['malformed JSON', '{"action":', 'value_error', ['body'], undef],
    ['unknown action', '{"action":"gateway:everything"}', 'value_error', ['body'], 'unknown action "gateway:everything"'],
    ['a bad sensitivity', '{"action":"gateway:tool:invoke","sensitivity_level":"secret"}', 'value_error',
     ['body', 'sensitivity_level'], 'invalid sensitivity_level "secret": expected low, medium, high or critical'],
);
for my $c (@cases) {
    my ($what, $body, $type, $loc, $msg) = @$c;
    my ($ours, $sark) = main::both($body, token => $t);
    is("$ours->{status} " . ($ours->{json}{error}{code} // ''), '400 GW-100', "$what: ours 400 GW-100");
    is($sark->{status}, 422, "$what: compat 422");
    my $d = ref $sark->{json} eq 'HASH' && ref $sark->{json}{detail} eq 'ARRAY' ? $sark->{json}{detail}[0] : {};
    is($d->{type} // '', $type, "$what: detail type $type");
    is_deeply($d->{loc}, $loc, "$what: detail loc");
    is($d->{msg}, $msg // $ours->{json}{error}{message}, "$what: detail msg is ours");
}
--- request
GET /sark/api/v1/gateway/authorize
--- error_code: 405
--- response_body
{"detail":"method not allowed: use POST"}



=== TEST 2: authentication: our envelope by default, {"detail", "error_type"} in compat, both 401 with WWW-Authenticate
--- init
my @cases = (
    ['no token', {}, 'AU-001'],
    ['forged token', { token => main::token('x', 'admin') . 'x' }, 'AU-002'],
    ['expired token', { token => jwt(sub => 'old', roles => ['admin'], exp => time - 3600) }, 'AU-003'],
);
for my $c (@cases) {
    my ($what, $opt, $code) = @$c;
    my ($ours, $sark) = main::both('{"action":"gateway:tool:invoke"}', %$opt);
    is("$ours->{status} " . ($ours->{json}{error}{code} // ''), "401 $code", "$what: ours 401 $code");
    is($sark->{status}, 401, "$what: compat 401");
    is_deeply([sort keys %{ $sark->{json} || {} }], ['detail', 'error_type'], "$what: compat detail and error_type");
    is($sark->{json}{detail}, $ours->{json}{error}{message}, "$what: the same message");
    like($sark->{headers}{'www-authenticate'} // '', qr/^Bearer realm="sark"/, "$what: WWW-Authenticate");
}
--- request
POST /sark/api/v1/gateway/authorize
{"action":"gateway:tool:invoke"}
--- error_code: 401
--- response_body
{"detail":"missing bearer token","error_type":"authentication_error"}



=== TEST 3: server_name and tool_name: required by default, optional in compat (a decision of the policy)
--- init
my $t = main::token('admin', 'admin');
my ($ours, $sark) = main::both('{"action":"gateway:tool:invoke"}', token => $t);
is("$ours->{status} $ours->{json}{error}{message}", '400 missing required field "server_name"', 'ours: server_name required');
is($sark->{status}, 200, 'compat: a decision');
ok($sark->{json}{allow}, 'compat: the admin is allowed') or diag($sark->{body});
($ours, $sark) = main::both('{"action":"gateway:tool:invoke","server_name":"postgres-mcp"}', token => $t);
is("$ours->{status} $ours->{json}{error}{message}", '400 missing required field "tool_name"', 'ours: tool_name required for invoke');
is($sark->{status}, 200, 'compat: tool_name optional');
--- request
POST /sark/api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":null,"tool_name":null,"sensitivity_level":null}
--- more_headers eval
"Authorization: Bearer " . main::token('admin', 'admin')
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin



=== TEST 4: filtered_parameters: absent on a deny by default, null in compat; the same object on an allow
--- init
my $t = main::token('analyst', 'analyst');
my ($ours, $sark) = main::both('{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
    . '"tool_name":"execute_query","parameters":{"query":"drop table x"}}', token => $t);
ok(!$ours->{json}{allow} && !exists $ours->{json}{filtered_parameters}, 'ours: a deny has no filtered_parameters');
ok(!$sark->{json}{allow} && exists $sark->{json}{filtered_parameters}
   && !defined $sark->{json}{filtered_parameters}, 'compat: a deny has filtered_parameters null');
($ours, $sark) = main::both('{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
    . '"tool_name":"execute_query","parameters":{"query":"select 1","password":"p"}}', token => $t);
is_deeply($sark->{json}{filtered_parameters}, { query => 'select 1' }, 'compat: an allow filters as ours');
is_deeply($ours->{json}{filtered_parameters}, $sark->{json}{filtered_parameters}, 'the same parameters');
--- request
POST /sark/api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"close_issue"}
--- more_headers eval
"Authorization: Bearer " . main::token('dev', 'developer')
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Only admins can close or delete GitHub issues","filtered_parameters":null,"audit_id":"[0-9a-f-]{36}","cache_ttl":\d+,"metadata":



=== TEST 5: an outage (OPA stopped): 503 OPA-001 by default; compat answers 200 deny, cache_ttl 0, and audits it as a deny
--- init
my $t = main::token('outage', 'analyst');
stack('stop', 'opa');
my $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables",'
         . '"parameters":{"n":"' . $main::N . '"}}';
my ($ours, $sark) = main::both($body, token => $t);
stack('start', 'opa');
is("$ours->{status} " . ($ours->{json}{error}{code} // ''), '503 OPA-001', 'ours: 503 OPA-001');
ok($ours->{headers}{'retry-after'}, 'ours: Retry-After');
is($sark->{status}, 200, 'compat: 200');
is_deeply({ map { $_ => $sark->{json}{$_} } qw(allow cache_ttl filtered_parameters reason) },
          { allow => JSON::PP::false, cache_ttl => 0, filtered_parameters => undef,
            reason => 'Policy evaluation failed: policy engine unreachable' },
          'compat: allow false, cache_ttl 0, the reason') or diag($sark->{body});
my $aid = $sark->{json}{audit_id} // '';
like($aid, qr/^[0-9a-f-]{36}$/, 'compat: an audit id');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("c-$main::N-outage"); @rows });
is(scalar(@rows), 1, 'one audit row: the outage answered as a deny (ours made none)');
is(join(' ', map { $_ // '' } @{ $rows[0] || {} }{qw(id decision reason)}),
   "$aid deny Policy evaluation failed: policy engine unreachable", 'its id, decision and reason');
like($rows[0]{metadata} // '', qr/"outage": "OPA-001"/, 'its metadata names the error');
# a second ask after OPA is back is a real decision (the outage was never cached)
poll_until(15, sub { authorize($body, path => '/sark/api/v1/gateway/authorize', token => $t)->{json}{allow} });
--- request eval
"POST /sark/api/v1/gateway/authorize\n" . '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables","parameters":{"n":"' . $main::N . '"}}'
--- more_headers eval
"Authorization: Bearer " . main::token('outage', 'analyst')
--- error_code: 200
--- response_body_like: ^\{"allow":true,



=== TEST 6: the gateway audit endpoint: no key is 422 (SARK declares the header), a wrong one 401 {"detail"}
--- init
my @r = map { http_request('POST', $_, body => '{}') }
    ('/api/v1/gateway/audit', '/sark/api/v1/gateway/audit');
is("$r[0]{status} " . ($r[0]{json}{error}{code} // ''), '401 AU-001', 'ours: 401 AU-001');
is($r[1]{status}, 422, 'compat: 422');
is_deeply($r[1]{json}{detail}[0]{loc}, ['header', 'x-gateway-api-key'], 'compat: loc names the header');
@r = map { http_request('POST', $_, body => '{}', headers => { 'X-Gateway-Api-Key' => 'wrong-key-0123456789' }) }
    ('/api/v1/gateway/audit', '/sark/api/v1/gateway/audit');
is("$r[0]{status} " . ($r[0]{json}{error}{code} // ''), '401 AU-002', 'ours: 401 AU-002');
is_deeply($r[1]{json}, { detail => 'invalid gateway API key', error_type => 'authentication_error' },
          'compat: 401 {"detail", "error_type"}');
--- request eval
"POST /sark/api/v1/gateway/audit\n" . '{"event_type":"tool_invoke","decision":"maybe","reason":"r","timestamp":1,"gateway_request_id":"g"}'
--- more_headers eval
"X-Gateway-Api-Key: $main::KEY"
--- error_code: 422
--- response_body
{"detail":[{"type":"value_error","loc":["body","decision"],"msg":"field \"decision\" must be \"allow\" or \"deny\"","input":null}]}
