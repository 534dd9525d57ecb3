# Self-test of the t/lib harness with plain nginx features (no module).
use lib 't/lib';
use Test::Sark;

no_module();
repeat_each(1);

plan tests => repeat_each() * (blocks() * 2 + 8);

run_tests();

__DATA__

=== TEST 1: return with a body
--- config
    location = /x { return 200 "hi\n"; }
--- request
GET /x
--- response_body
hi



=== TEST 2: empty_gif and response headers
--- config
    location = /pixel { empty_gif; }
--- request
GET /pixel
--- response_headers
Content-Type: image/gif
Content-Length: 43
!X-Nothing
--- response_body_like: ^GIF89a



=== TEST 3: unknown location is a 404 and logged
--- config
    location = /x { return 200 "hi\n"; }
--- request
GET /nope
--- error_code: 404
--- error_log
open() "$TEST_NGINX_HTML_DIR/nope" failed



=== TEST 4: request headers, body and custom header checks
--- config
    location = /echo {
        add_header X-Method $request_method always;
        add_header X-Got $http_x_probe always;
        return 200 "len=$content_length\n";
    }
--- request
POST /echo
hello world
--- more_headers
X-Probe: abc
--- response_headers_like
X-Method: P.ST
X-Got: a\w+
--- response_body
len=11



=== TEST 5: error_log with a regex, no_error_log
--- config
    location = /deny { deny all; empty_gif; }
--- request
GET /deny
--- error_code: 403
--- error_log eval
[qr/\[error\].*access forbidden by rule/]
--- no_error_log
[alert]
[crit]



=== TEST 6: request eval and raw request
--- config
    location = /len { return 200 "$content_length:$request_body\n"; }
--- raw_request eval
"GET /len HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
--- response_body
3:
--- no_error_log
[error]



=== TEST 7: nginx -t rejects a bad directive
--- config
    location = /x { no_such_directive on; }
--- must_die
--- error_log
unknown directive "no_such_directive"



=== TEST 8: jwt() produces a token the body can echo
--- config
    location = /auth { return 200 "$http_authorization\n"; }
--- request
GET /auth
--- more_headers eval
"Authorization: Bearer " . jwt(sub => 'u1', secret => 'k')
--- response_body_like eval
qr/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/
