# Decisions from the real policy through sarkd and OPA: allow and deny per
# role, filtered parameters, reasons, TTLs and the answer's shape.
use lib 't/lib';
use Test::Sark;

repeat_each(1);

plan tests => repeat_each() * (blocks() * 2 + 3);

sub bearer {
    my %c = @_;
    return "Authorization: Bearer " . jwt(email => 'a@example.com', %c);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};
    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};
_EOC_
    $block->set_value(config => "    location = /api/v1/gateway/authorize { sark_api authorize; }\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: analyst SELECT is allowed and the password is stripped
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"SELECT * FROM users","password":"hunter2","limit":10}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database","filtered_parameters":\{"limit":10,"query":"SELECT \* FROM users"\},"audit_id":"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","cache_ttl":60,"metadata":\{"policy_revision":"[0-9a-f]{16}","evaluated_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","cache":"MISS"\}\}$
--- no_error_log
[error]



=== TEST 2: every secret key is stripped from execute_query
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"select 1","secret":"s","api_key":"k","password":"p"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: "allow":true,"reason":"[^"]+","filtered_parameters":\{"query":"select 1"\},



=== TEST 3: analyst DROP is denied, without filtered_parameters
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"DROP TABLE users"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"DROP, DELETE, TRUNCATE queries require admin role","audit_id":"[0-9a-f-]{36}","cache_ttl":5,"metadata":\{"policy_revision":"[0-9a-f]{16}",
--- no_error_log
[error]



=== TEST 4: a deny rule overrides an allow (select then drop): every message, sorted
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"select 1; drop table x"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"DROP, DELETE, TRUNCATE queries require admin role; Only admins can run more than one SQL statement per query","audit_id"



=== TEST 5: a column named deleted_at is not destructive SQL
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"select id from t where deleted_at is null"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst



=== TEST 6: analyst may list tables
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database","filtered_parameters":\{\},



=== TEST 7: analyst may not use GitHub tools
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"get_repo"}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions for gateway:tool:invoke on github-mcp/get_repo","audit_id":"[^"]+","cache_ttl":5,



=== TEST 8: developer may read a repository
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"get_repo","parameters":{"repo":"sark"}}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: developer a@example.com can access GitHub tools","filtered_parameters":\{"repo":"sark"\},



=== TEST 9: developer may not close issues
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"close_issue"}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Only admins can close or delete GitHub issues"



=== TEST 10: developer may not query the database
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query","parameters":{"query":"select 1"}}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions



=== TEST 11: admin may run a mutation
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_mutation","parameters":{"sql":"delete from t"}}
--- more_headers eval
main::bearer(roles => ['admin'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin user a@example.com can perform any action"



=== TEST 12: analyst may not run a mutation
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_mutation"}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Only admins can execute destructive SQL operations"



=== TEST 13: a user holding every role gets one reason, the admin one
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query","parameters":{"query":"select 1"}}
--- more_headers eval
main::bearer(roles => ['developer', 'analyst', 'admin'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin user a@example.com can perform any action"



=== TEST 14: a single "role" claim is honoured
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}
--- more_headers eval
main::bearer(roles => undef, role => 'analyst')
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst



=== TEST 15: no roles at all is a deny
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}
--- more_headers eval
main::bearer(roles => [])
--- error_code: 200
--- response_body_like: ^\{"allow":false,



=== TEST 16: a token caller cannot name another subject in "user" (400; only gateways may)
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables",
 "user":{"id":"root","roles":["admin"]}}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"GW-100","message":"field \\"user\\" names another subject: only a gateway



=== TEST 16b: a token caller's "user" naming itself is ignored: its token's roles decide
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables",
 "user":{"id":"me-16b","roles":["admin"]}}
--- more_headers eval
"Authorization: Bearer " . jwt(sub => 'me-16b', email => 'a@example.com', roles => ['developer'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions



=== TEST 17: critical sensitivity caps the TTL at GATEWAY_CACHE_TTL_CRITICAL
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables","sensitivity_level":"critical"}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: "allow":true,.*"cache_ttl":30,



=== TEST 18: admin server access
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:server:access","server_name":"github-mcp"}
--- more_headers eval
main::bearer(roles => ['admin'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin user



=== TEST 19: unicode in parameters survives the round trip
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"create_issue",
 "parameters":{"title":"caf\u00e9 \"quoted\" ☃","body":"line\nbreak"}}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 200
--- response_body_like: "filtered_parameters":\{"body":"line\\nbreak","title":"café \\"quoted\\" ☃"\}



=== TEST 20: secrets are stripped from every tool, at any depth, in any case
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"github-mcp","tool_name":"create_issue",
 "parameters":{"repo":"sark","Token":"ghp_x","headers":{"X-Api-Key":"k","Accept":"json"},
  "items":[{"client_secret":"s","id":1},[{"PASSWORD":"p","title":"password reset"}]]}}
--- more_headers eval
main::bearer(roles => ['developer'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: developer a@example.com can access GitHub tools","filtered_parameters":\{"headers":\{"Accept":"json"\},"items":\[\{"id":1\},\[\{"title":"password reset"\}\]\],"repo":"sark"\},"audit_id"



=== TEST 21: an analyst's query is one statement: a second one, even after a comment, is refused
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"SELECT/**/1;/**/UPDATE users SET role='admin'"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Only admins can run SQL that changes data, schema, settings or privileges; Only admins can run more than one SQL statement per query","audit_id"



=== TEST 22: an analyst's SELECT ... INTO (it creates a table) is refused
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"select *\ninto newtable\nfrom users"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Only admins can run SQL that changes data, schema, settings or privileges","audit_id"



=== TEST 23: columns that hold a keyword (updated_at, created_by) are no keyword; a leading comment and a final ";" are fine
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query",
 "parameters":{"query":"/* report */ SELECT id, updated_at, created_by FROM users;"}}
--- more_headers eval
main::bearer(roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst a@example.com can query database","filtered_parameters":\{"query":"/\* report \*/ SELECT id, updated_at, created_by FROM users;"\},



=== TEST 24: tools granted in policy data: a guest may call echo on the everything server
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"everything","tool_name":"echo","parameters":{"message":"hi"}}
--- more_headers eval
main::bearer(roles => ['guest'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: role guest is granted echo on everything","filtered_parameters":\{"message":"hi"\},



=== TEST 25: a tool the grants leave out is refused
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"everything","tool_name":"get-env"}
--- more_headers eval
main::bearer(roles => ['guest', 'analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions for gateway:tool:invoke on everything/get-env","audit_id"



=== TEST 26: gateway:tool:discover answers the tools of a list the caller may call, in their order
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:discover","server_name":"everything",
 "parameters":{"tools":["get-env","get-tiny-image","get-sum","echo"]}}
--- more_headers eval
main::bearer(roles => ['guest'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: a@example.com may see 2 of the 4 tools listed on everything","filtered_parameters":\{"tools":\["get-tiny-image","echo"\]\},



=== TEST 27: a caller who may call none of the listed tools is refused discovery
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:discover","server_name":"everything","parameters":{"tools":["get-env"]}}
--- more_headers eval
main::bearer(roles => ['guest', 'viewer'])
--- error_code: 200
--- response_body_like: ^\{"allow":false,"reason":"Denied: insufficient permissions for gateway:tool:discover on everything/unknown","audit_id"
