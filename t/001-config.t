# nginx -t catches bad sark_* directives with a clear message.
use lib 't/lib';
use Test::Sark;

repeat_each(1);

plan tests => repeat_each() * (blocks() * 2);

run_tests();

__DATA__

=== TEST 1: sarkd address must be a unix socket
--- http_config
    sark_sarkd 127.0.0.1:9000;
--- config
--- must_die
--- error_log
invalid sarkd address "127.0.0.1:9000": expected "unix:/path/to/sarkd.sock"



=== TEST 2: sark_api needs sark_sarkd
--- http_config
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location = /a { sark_api authorize; }
--- must_die
--- error_log
"sark_api" requires "sark_sarkd" in the http block



=== TEST 3: sark_api needs a JWT key
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
--- config
    location = /a { sark_api authorize; }
--- must_die
--- error_log
"sark_api" requires "sark_jwt_secret" or "sark_jwt_key_file"



=== TEST 4: a short HS256 secret is refused
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret tooshort;
--- config
--- must_die
--- error_log eval
qr/invalid "sark_jwt_secret": .*32/



=== TEST 5: a missing key file is refused
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_key_file /nonexistent/key.pem;
--- config
--- must_die
--- error_log
invalid "sark_jwt_key_file" "/nonexistent/key.pem"



=== TEST 6: unknown sark_api kind
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location = /a { sark_api authorise; }
--- must_die
--- error_log
invalid value "authorise"



=== TEST 7: JSON depth bounds
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
    sark_json_max_depth 1000;
--- config
--- must_die
--- error_log
"sark_json_max_depth" directive must be between 2 and 256



=== TEST 8: duplicate sark_sarkd
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_sarkd unix:/tmp/other.sock;
--- config
--- must_die
--- error_log
"sark_sarkd" directive is duplicate



=== TEST 9: a public key that is too weak is refused
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_key_file $TEST_NGINX_REPO/t/unit/keys/rsa1024.pub;
--- config
--- must_die
--- error_log eval
qr/invalid "sark_jwt_key_file" ".*rsa1024.pub": .*2048/



=== TEST 10: a fixed sark_authz_tool longer than 256 bytes is refused
--- http_config
    sark_sarkd unix:/tmp/none.sock;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config eval
"    location = /a {
        sark_authz on;
        sark_authz_action gateway:tool:invoke;
        sark_authz_tool " . ("t" x 257) . ";
        empty_gif;
    }"
--- must_die
--- error_log
"sark_authz_action" must not be empty, no "sark_authz_*" value may be longer than 256 bytes



=== TEST 11: an audit acknowledgement timeout under 1 s is refused
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
    sark_audit_ack_timeout 500ms;
--- config
--- must_die
--- error_log
"sark_audit_ack_timeout" directive must be between 1s and 1h



=== TEST 12: an audit flush interval over 10 s is refused
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
    sark_audit_flush 11s;
--- config
--- must_die
--- error_log
"sark_audit_flush" directive must be between 1ms and 10s



=== TEST 13: sark_protected_resource takes absolute http(s) URLs only
--- config
    location = /.well-known/oauth-protected-resource {
        sark_protected_resource https://gw.example.com/mcp ftp://auth.example.com;
    }
--- must_die
--- error_log
"ftp://auth.example.com" is not an absolute http or https URL without a fragment, spaces or quotes



=== TEST 14: a resource with a fragment is refused
--- config
    location = /.well-known/oauth-protected-resource {
        sark_protected_resource https://gw.example.com/mcp#x;
    }
--- must_die
--- error_log
"https://gw.example.com/mcp#x" is not an absolute http or https URL



=== TEST 15: the public document cannot share a location with enforcement
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location = /.well-known/oauth-protected-resource {
        sark_authz on;
        sark_authz_action gateway:server:access;
        sark_protected_resource https://gw.example.com/mcp;
    }
--- must_die
--- error_log
"sark_protected_resource" serves a public document: it cannot share a location with "sark_api" or "sark_authz"



=== TEST 16: sark_mcp needs the MCP server's name
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location /mcp { sark_mcp on; }
--- must_die
--- error_log
"sark_mcp" requires "sark_authz_server": the MCP server's name in the policy



=== TEST 17: sark_mcp takes the action and tool from the messages
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location /mcp {
        sark_mcp on;
        sark_authz_server everything;
        sark_authz_action gateway:tool:invoke;
    }
--- must_die
--- error_log
"sark_mcp" takes the action and the tool from each JSON-RPC message



=== TEST 18: sark_mcp with sark_authz off is a contradiction
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location /mcp { sark_mcp on; sark_authz off; sark_authz_server everything; }
--- must_die
--- error_log
"sark_mcp on" enforces: it cannot go with "sark_authz off"



=== TEST 19: sark_mcp needs a JWT key
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
--- config
    location /mcp { sark_mcp on; sark_authz_server everything; }
--- must_die
--- error_log
"sark_mcp" requires "sark_jwt_secret" or "sark_jwt_key_file"



=== TEST 20: sark_mcp and sark_api cannot share a location
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
--- config
    location /mcp { sark_mcp on; sark_authz_server everything; sark_api authorize; }
--- must_die
--- error_log
"sark_mcp" and "sark_api" cannot share a location



=== TEST 21: the session zone has a floor
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
    sark_mcp_sessions 8k;
--- config
    location /mcp { sark_mcp on; sark_authz_server everything; }
--- must_die
--- error_log
"sark_mcp_sessions" must be at least 64k



=== TEST 22: sark_api_compat takes off or sark
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_secret $TEST_NGINX_JWT_SECRET;
    sark_api_compat fastapi;
--- config
    location /a { sark_api authorize; }
--- must_die
--- error_log
"sark_api_compat" must be "off" or "sark", not "fastapi"
