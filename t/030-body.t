# Bad request bodies get a clear 400/405/413 envelope and never reach the
# policy engine.
use lib 't/lib';
use Test::Sark;

repeat_each(1);

plan tests => repeat_each() * (blocks() * 2 + 3);

our $token = jwt(roles => ['admin']);

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
    sark_max_body_size 4k;
    sark_json_max_depth 8;
_EOC_
    $block->set_value(config => "    location = /authorize { sark_api authorize; }\n")
        unless defined $block->config;
    $block->set_value(more_headers => "Authorization: Bearer $main::token")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: malformed JSON
--- request
POST /authorize
{"action": "gateway:tool:invoke",
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"GW-100","message":"invalid JSON at offset \d+: [^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: not an object
--- request
POST /authorize
["gateway:tool:invoke"]
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"request body must be a JSON object"



=== TEST 3: empty body
--- request
POST /authorize
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"request body is empty: expected a JSON object"



=== TEST 4: missing action
--- request
POST /authorize
{"server_name":"postgres-mcp","tool_name":"execute_query"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"missing required field \\"action\\""



=== TEST 5: action of the wrong type
--- request
POST /authorize
{"action":42}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"field \\"action\\" must be a string"



=== TEST 6: unknown action
--- request
POST /authorize
{"action":"gateway:tool:destroy","server_name":"x"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"unknown action \\"gateway:tool:destroy\\""



=== TEST 7: invoke without tool_name
--- request
POST /authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"missing required field \\"tool_name\\""



=== TEST 8: parameters must be an object
--- request
POST /authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"execute_query","parameters":"select 1"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"field \\"parameters\\" must be an object"



=== TEST 9: tool_name of the wrong type
--- request
POST /authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":["execute_query"]}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"field \\"tool_name\\" must be a string"



=== TEST 10: unknown sensitivity level
--- request
POST /authorize
{"action":"gateway:server:access","server_name":"postgres-mcp","sensitivity_level":"extreme"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"invalid sensitivity_level \\"extreme\\": expected low, medium, high or critical"



=== TEST 11: body over sark_max_body_size (Content-Length)
--- request eval
"POST /authorize\n" . '{"action":"gateway:server:list","context":{"pad":"' . ("x" x 5000) . '"}}'
--- error_code: 413
--- response_body_like: "code":"GW-413","message":"request body is larger than 4096 bytes"



=== TEST 12: body over the limit sent chunked
--- raw_request eval
my $body = '{"action":"gateway:server:list","context":{"pad":"' . ("y" x 5000) . '"}}';
"POST /authorize HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Authorization: Bearer $main::token\r\nTransfer-Encoding: chunked\r\n\r\n"
. sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body)
--- error_code: 413
--- response_body_like: "code":"GW-413","message":"request body is larger than 4096 bytes"



=== TEST 13: nesting deeper than sark_json_max_depth
--- request eval
"POST /authorize\n" . '{"action":"gateway:server:list","context":' . ('{"a":' x 10) . '1' . ('}' x 10) . '}'
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"invalid JSON at offset \d+: nesting deeper than 8



=== TEST 14: invalid UTF-8
--- request eval
"POST /authorize\n{\"action\":\"gateway:server:access\",\"server_name\":\"pg\xff\xfe\"}"
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"invalid JSON at offset \d+: invalid UTF-8



=== TEST 15: duplicate keys are refused (no smuggled second action)
--- request
POST /authorize
{"action":"gateway:server:list","action":"gateway:tool:invoke"}
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"invalid JSON at offset \d+: duplicate key \\"action\\""



=== TEST 16: trailing garbage
--- request
POST /authorize
{"action":"gateway:server:list"} x
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"invalid JSON at offset \d+



=== TEST 17: GET is not allowed
--- request
GET /authorize
--- error_code: 405
--- response_headers
Allow: POST
--- response_body_like: "code":"GW-101","message":"method not allowed: use POST"



=== TEST 18: server_name longer than 256 bytes
--- request eval
"POST /authorize\n" . '{"action":"gateway:server:access","server_name":"' . ("s" x 300) . '"}'
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"field \\"server_name\\" is longer than 256 bytes"



=== TEST 19: a chunked body is not read past the limit: refused there, without waiting for the rest
--- raw_request eval
"POST /authorize HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Authorization: Bearer $main::token\r\nTransfer-Encoding: chunked\r\n\r\n"
. sprintf("%x\r\n%s\r\n", 5000, "z" x 5000)
--- timeout: 3
--- error_code: 413
--- response_body_like: "code":"GW-413","message":"request body is larger than 4096 bytes"



=== TEST 20: nginx's own 413 (client_max_body_size below sark_max_body_size) is the JSON envelope too
--- config
    location = /authorize { client_max_body_size 1k; sark_api authorize; }
--- request eval
"POST /authorize\n" . '{"action":"gateway:server:list","context":{"pad":"' . ("x" x 2000) . '"}}'
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":\{"code":"GW-413","message":"request body too large","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 21: an upstream nginx cannot reach, behind an enforced location, is a JSON 502
--- config
    location = /enforced {
        sark_authz on;
        sark_authz_action gateway:server:access;
        sark_authz_server github-mcp;
        proxy_pass http://127.0.0.1:1;
    }
--- request
GET /enforced
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":\{"code":"GW-502","message":"upstream failed","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 22: what the upstream answers itself, errors included, passes unchanged
--- config
    location = /enforced {
        sark_authz on;
        sark_authz_action gateway:server:access;
        sark_authz_server github-mcp;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/upstream-404;
    }
    location = /upstream-404 { return 404 "upstream says no\n"; }
--- request
GET /enforced
--- error_code: 404
--- response_body
upstream says no
