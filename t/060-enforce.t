# Enforcement on ordinary locations (`sark_authz on`): allow lets the
# content handler answer, deny is 403 AZ-001, a bad token 401, an outage
# 503 — all with the JSON envelope.  Server and tool come from regex
# captures; the sark_* variables are shown in response headers.  The L1
# cache keeps serving cached allows while sarkd is down.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request decision_is l1_ready opa_evals);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Tests per block, in order: 10 5 7 5 10 5 5 3 3 3 5 4 2 2 2 2 (73); the
# init sections hold 3 more.
plan tests => repeat_each() * 73 + 3;

our $N = nonce();
$ENV{TEST_NGINX_RUN_ID} = $N;

our $developer = jwt(sub => "u-$N-dev", email => 'd@example.com', roles => ['developer']);
our $analyst = jwt(sub => "u-$N-analyst", email => 'a@example.com', roles => ['analyst']);

sub ready {
    l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config())
        unless defined $block->http_config;
    $block->set_value(config => <<'_EOC_') unless defined $block->config;
    location = /api/v1/gateway/authorize { sark_api authorize; }

    location ~ ^/mcp/(?<srv>[a-z-]+)/(?<tool>[a-z_]+)$ {
        sark_authz         on;
        sark_authz_action  gateway:tool:invoke;
        sark_authz_server  $srv;
        sark_authz_tool    $tool;

        add_header X-Sark-Decision $sark_decision always;
        add_header X-Sark-Cache    $sark_cache always;
        add_header X-Sark-User     $sark_user always;
        add_header X-Sark-Time     $sark_authz_time always;
        add_header X-Sark-Audit    $sark_audit_id always;
        add_header X-Sark-Reason   $sark_reason always;

        empty_gif;
    }
_EOC_
    $block->set_value(more_headers => "Authorization: Bearer $main::developer")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: allowed tool: the content handler answers (200 image/gif) and the variables say why
--- init
main::ready();
--- request
GET /mcp/github-mcp/get_repo
--- error_code: 200
--- response_headers_like
Content-Type: image/gif
X-Sark-Decision: allow
X-Sark-Cache: MISS
X-Sark-User: u-$TEST_NGINX_RUN_ID-dev
X-Sark-Time: \d+\.\d{3}
X-Sark-Audit: [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}
X-Sark-Reason: Allowed: developer d@example\.com can access GitHub tools
--- response_body_like: ^GIF89a
--- no_error_log
[error]



=== TEST 2: the same call again is an L1 hit and does not reach OPA
--- init
my $e = opa_evals();
my $r = http_request('GET', '/mcp/github-mcp/get_repo', token => $main::developer);
ok($r->{status} == 200 && ($r->{headers}{'x-sark-cache'} // '') eq 'L1',
   'repeated call: 200 from L1') or diag("$r->{status} cache=" . ($r->{headers}{'x-sark-cache'} // ''));
is(opa_evals() - $e, 0, 'OPA not asked');
--- request
GET /mcp/github-mcp/get_repo
--- error_code: 200
--- response_headers_like
Content-Type: image/gif
X-Sark-Decision: allow
X-Sark-Cache: L1
--- no_error_log
[error]



=== TEST 3: denied tool: 403 AZ-001 with the policy's reason
--- request
GET /mcp/github-mcp/close_issue
--- error_code: 403
--- response_headers_like
Content-Type: application/json
X-Sark-Decision: deny
X-Sark-Cache: MISS
X-Sark-Reason: Only admins can close or delete GitHub issues
--- response_body_like: ^\{"error":\{"code":"AZ-001","message":"Only admins can close or delete GitHub issues","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 4: the denial repeated comes from L1 and is still 403
--- request
GET /mcp/github-mcp/close_issue
--- error_code: 403
--- response_headers_like
X-Sark-Decision: deny
X-Sark-Cache: L1
--- response_body_like: ^\{"error":\{"code":"AZ-001","message":"Only admins can close or delete GitHub issues",
--- no_error_log
[error]



=== TEST 5: no token: 401 AU-001, no decision
--- request
GET /mcp/github-mcp/get_repo
--- more_headers
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Bearer realm="sark"
X-Sark-Decision: error
X-Sark-Reason: missing bearer token
!X-Sark-Cache
!X-Sark-User
!X-Sark-Audit
--- response_body_like: ^\{"error":\{"code":"AU-001","message":"missing bearer token","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 6: expired token: 401 AU-003
--- request
GET /mcp/github-mcp/get_repo
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "u-$main::N-dev", roles => ['developer'], expired => 1)
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark", error="invalid_token"
X-Sark-Decision: error
--- response_body_like: ^\{"error":\{"code":"AU-003","message":"token expired","request_id":"[0-9a-f]{32}"\}\}$
--- no_error_log
[error]



=== TEST 7: server and tool come from the location's regex captures (allow)
--- request
GET /mcp/postgres-mcp/list_tables
--- more_headers eval
"Authorization: Bearer $main::analyst"
--- error_code: 200
--- response_headers_like
X-Sark-Decision: allow
X-Sark-Reason: Allowed: analyst a@example\.com can query database
--- response_body_like: ^GIF89a
--- no_error_log
[error]



=== TEST 8: server and tool come from the location's regex captures (deny)
--- request
GET /mcp/postgres-mcp/execute_mutation
--- more_headers eval
"Authorization: Bearer $main::analyst"
--- error_code: 403
--- response_body_like: ^\{"error":\{"code":"AZ-001","message":"Only admins can execute destructive SQL operations",
--- no_error_log
[error]



=== TEST 9: a decision taken through the decision API is an L1 hit here (same inputs, same key)
--- init
decision_is(authorize('{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"list_repos"}',
                      token => $main::developer),
            {allow => 1, cache => 'MISS'}, 'decision API: list_repos allowed, MISS');
--- request
GET /mcp/github-mcp/list_repos
--- error_code: 200
--- response_headers_like
X-Sark-Cache: L1
--- no_error_log
[error]



=== TEST 10: sarkd stopped: a cached allow is still served from L1
--- init
stack('stop', 'sarkd');
--- request
GET /mcp/github-mcp/get_repo
--- error_code: 200
--- response_headers_like
X-Sark-Decision: allow
X-Sark-Cache: L1



=== TEST 11: sarkd stopped: an uncached decision is 503 CN-001
--- request
GET /mcp/github-mcp/search_repos
--- error_code: 503
--- response_headers_like
Content-Type: application/json
Retry-After: 1
X-Sark-Decision: error
--- response_body_like: ^\{"error":\{"code":"CN-001","message":"authorization service unavailable","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 12: sarkd back: the same call is decided, without a reload
# ready() waits for the worker to reconnect (back-off up to 1 s) and to
# hear the policy revision again.
--- init
stack('start', 'sarkd');
main::ready();
--- request
GET /mcp/github-mcp/search_repos
--- error_code: 200
--- response_headers_like
X-Sark-Decision: allow
X-Sark-Cache: MISS
--- response_body_like: ^GIF89a



=== TEST 13: nginx -t refuses sark_authz on without sark_authz_action
--- config
    location = /x {
        sark_authz on;
        empty_gif;
    }
--- must_die
--- error_log
"sark_authz" requires "sark_authz_action"



=== TEST 14: a sensitivity a variable makes from the request must be one of the four levels
--- config
    location = /sens {
        sark_authz             on;
        sark_authz_action      gateway:tool:invoke;
        sark_authz_server      github-mcp;
        sark_authz_tool        get_repo;
        sark_authz_sensitivity $arg_s;
        empty_gif;
    }
--- request
GET /sens?s=extreme
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"GW-100","message":"request does not name a valid action, server, tool or sensitivity",



=== TEST 15: nginx -t refuses a fixed sensitivity that is not a level
--- config
    location = /x {
        sark_authz on;
        sark_authz_action gateway:tool:invoke;
        sark_authz_sensitivity extreme;
        empty_gif;
    }
--- must_die
--- error_log
"sark_authz_sensitivity" must be low, medium, high or critical



=== TEST 16: sark_profile on: one line per decision with where its time went
--- config
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location ~ ^/mcp/(?<srv>[a-z-]+)/(?<tool>[a-z_]+)$ {
        sark_profile       on;
        sark_authz         on;
        sark_authz_action  gateway:tool:invoke;
        sark_authz_server  $srv;
        sark_authz_tool    $tool;
        empty_gif;
    }
--- request
GET /mcp/github-mcp/get_repo
--- error_code: 200
--- error_log eval
qr/sark: profile \{"audit_id":"[0-9a-f-]{36}","action":"gateway:tool:invoke","cache":"(L1|L2|MISS)","auth_us":\d+,"cache_us":\d+,"sarkd_us":\d+,"audit_us":\d+,"overhead_us":\d+,"total_us":\d+\}/
