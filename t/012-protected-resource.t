# The OAuth 2.0 protected resource metadata document (RFC 9728) served by
# sark_protected_resource: what an MCP client reads after a 401 to learn
# where to get a token.
use lib 't/lib';
use Test::Sark;

repeat_each(1);

# status and body for each block, and each header checked
plan tests => repeat_each() * (blocks() * 2 + 2);

run_tests();

__DATA__

=== TEST 1: the document names the resource and its authorization servers
--- config
    location = /.well-known/oauth-protected-resource/mcp/everything {
        sark_protected_resource https://gw.example.com/mcp/everything
                                https://auth.example.com https://auth2.example.com/tenant;
    }
--- request
GET /.well-known/oauth-protected-resource/mcp/everything
--- response_headers
Content-Type: application/json
Cache-Control: max-age=3600
--- response_body chomp
{"resource":"https://gw.example.com/mcp/everything","authorization_servers":["https://auth.example.com","https://auth2.example.com/tenant"],"bearer_methods_supported":["header"]}



=== TEST 2: without authorization servers the member is left out
--- config
    location = /.well-known/oauth-protected-resource {
        sark_protected_resource http://127.0.0.1:8000/mcp;
    }
--- request
GET /.well-known/oauth-protected-resource
--- error_code: 200
--- response_body chomp
{"resource":"http://127.0.0.1:8000/mcp","bearer_methods_supported":["header"]}



=== TEST 3: HEAD gets the headers alone
--- config
    location = /.well-known/oauth-protected-resource {
        sark_protected_resource https://gw.example.com/mcp https://auth.example.com;
    }
--- request
HEAD /.well-known/oauth-protected-resource
--- error_code: 200
--- response_body chomp



=== TEST 4: other methods are refused
--- config
    location = /.well-known/oauth-protected-resource {
        sark_protected_resource https://gw.example.com/mcp https://auth.example.com;
    }
--- request
POST /.well-known/oauth-protected-resource
{"resource":"https://evil.example.com"}
--- error_code: 405
--- response_body_unlike: evil



=== TEST 5: a 401 of an enforced location points at the document
--- http_config eval
Test::Sark::Util::sark_http_config()
--- config
    sark_resource_metadata http://127.0.0.1:$TEST_NGINX_SERVER_PORT/.well-known/oauth-protected-resource/mcp;
    location = /.well-known/oauth-protected-resource/mcp {
        sark_protected_resource http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mcp https://auth.example.com;
    }
    location = /mcp {
        sark_authz on;
        sark_authz_action gateway:server:access;
        sark_authz_server everything;
    }
--- request
GET /mcp
--- error_code: 401
--- response_headers_like
WWW-Authenticate: ^Bearer realm="sark", resource_metadata="http://127\.0\.0\.1:\d+/\.well-known/oauth-protected-resource/mcp"$



=== TEST 6: and the document needs no token
--- http_config eval
Test::Sark::Util::sark_http_config()
--- config
    sark_resource_metadata http://127.0.0.1:$TEST_NGINX_SERVER_PORT/.well-known/oauth-protected-resource/mcp;
    location = /.well-known/oauth-protected-resource/mcp {
        sark_protected_resource http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mcp https://auth.example.com;
    }
--- request
GET /.well-known/oauth-protected-resource/mcp
--- error_code: 200
--- response_body_like: ^\{"resource":"http://127\.0\.0\.1:\d+/mcp","authorization_servers":\["https://auth\.example\.com"\],"bearer_methods_supported":\["header"\]\}$
