# Every way a caller can fail to authenticate: 401, the AU- code, the
# envelope and WWW-Authenticate.  Also RS256 and ES256 tokens, and that
# an algorithm can never be swapped for another.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(pk_jwt);
use MIME::Base64 qw(encode_base64url);
use JSON::PP ();

repeat_each(1);

plan tests => repeat_each() * (blocks() * 2 + 8);

our $keys = "$ENV{TEST_NGINX_REPO}/t/unit/keys";

sub pk_token { my ($alg, $key, %claims) = @_; return pk_jwt($alg, $key, %claims) }

# HS256 with the RSA public key's PEM bytes as the HMAC secret: the
# classic algorithm-confusion forgery.
sub confused_token {
    open my $fh, '<', "$keys/rsa.pub" or die $!;
    local $/;
    my $pem = <$fh>;
    return jwt(roles => ['admin'], secret => $pem);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};
    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};
_EOC_
    $block->set_value(config => <<"_EOC_") unless defined $block->config;
    location = /authorize { sark_api authorize; }
    location = /rsa {
        sark_jwt_key_file $keys/rsa.pub;
        sark_api authorize;
    }
    location = /ec {
        sark_jwt_key_file $keys/ec.pub;
        sark_api authorize;
    }
    location = /meta {
        sark_resource_metadata https://gw.example.com/.well-known/oauth-protected-resource;
        sark_api authorize;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: no Authorization header
--- request
POST /authorize
{"action":"gateway:server:list"}
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark"
--- response_body_like: ^\{"error":\{"code":"AU-001","message":"missing bearer token","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: not a Bearer scheme
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers
Authorization: Basic dXNlcjpwYXNz
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark", error="invalid_token"
--- response_body_like: ^\{"error":\{"code":"AU-002","message":"invalid authorization header: expected \\"Bearer <token>\\"","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: Bearer with nothing after it
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers
Authorization: Bearer    
--- error_code: 401
--- response_body_like: "code":"AU-001","message":"missing bearer token"



=== TEST 4: a token that is not a JWT
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers
Authorization: Bearer not-a-jwt
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"malformed token: expected three segments"
--- error_log
sark: token rejected: malformed token



=== TEST 5: signed with another secret
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(roles => ['admin'], wrong_secret => 1)
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark", error="invalid_token"
--- response_body_like: "code":"AU-002","message":"invalid token signature"



=== TEST 6: payload changed after signing
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
my ($h, $p, $s) = split /\./, jwt(roles => ['developer']);
my $admin = MIME::Base64::encode_base64url(JSON::PP->new->encode({
    sub => 'x', roles => ['admin'], exp => time + 600,
    iss => $ENV{TEST_NGINX_JWT_ISSUER}, aud => $ENV{TEST_NGINX_JWT_AUDIENCE}}));
"Authorization: Bearer $h.$admin.$s"
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token signature"



=== TEST 7: expired
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(expired => 1)
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark", error="invalid_token"
--- response_body_like: ^\{"error":\{"code":"AU-003","message":"token expired","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 8: not valid yet (nbf an hour ahead)
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(nbf_future => 1)
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"token not yet valid"



=== TEST 9: wrong issuer
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(iss => 'https://evil.example.com')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"token issuer not accepted"



=== TEST 10: wrong audience
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(aud => ['another-api'])
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"token audience not accepted"



=== TEST 11: alg none is never accepted
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(roles => ['admin'], alg => 'none')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"unsigned tokens are not accepted"



=== TEST 12: alg NoNe with a signature is still refused
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
my $t = jwt(roles => ['admin'], header => {alg => 'NoNe'});
"Authorization: Bearer $t"
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"unsigned tokens are not accepted"



=== TEST 13: algorithm confusion: HS256 signed with the RSA public key
--- request
POST /rsa
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . main::confused_token()
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token: no key configured for HS256"



=== TEST 14: RS256 token verified with the public key
--- request
POST /rsa
{"action":"gateway:server:access","server_name":"github-mcp"}
--- more_headers eval
"Authorization: Bearer " . main::pk_token('RS256', "$main::keys/rsa.key")
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin user pk@example.com can perform any action"
--- no_error_log
[error]



=== TEST 15: ES256 token verified with the public key
--- request
POST /ec
{"action":"gateway:server:access","server_name":"github-mcp"}
--- more_headers eval
"Authorization: Bearer " . main::pk_token('ES256', "$main::keys/ec.key")
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: admin user pk@example.com
--- no_error_log
[error]



=== TEST 16: RS256 token where only an HS256 secret is configured
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . main::pk_token('RS256', "$main::keys/rsa.key")
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token: no key configured for RS256"



=== TEST 17: ES256 token signed by another EC key
--- request
POST /ec
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . main::pk_token('ES256', "$main::keys/ec2.key")
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token signature"



=== TEST 18: a token without sub
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(sub => undef)
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token: claim \\"sub\\" is missing"



=== TEST 19: roles of the wrong type
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(roles => 'admin')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid token: claim \\"roles\\" has the wrong type"



=== TEST 20: resource_metadata is announced when configured
--- request
POST /meta
{"action":"gateway:server:list"}
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="sark", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"
--- response_body_like: "code":"AU-001"



=== TEST 21: refresh tokens are not access tokens
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(type => 'refresh')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"claim \\"type\\" is not \\"access\\": only access tokens are accepted"



=== TEST 22: nor in another case
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(type => 'Refresh')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"claim \\"type\\" is not \\"access\\"



=== TEST 23: nor named by another claim (token_type, Keycloak's typ)
--- request
POST /authorize
{"action":"gateway:server:list"}
--- more_headers eval
"Authorization: Bearer " . jwt(type => undef, token_type => 'refresh', typ => 'Refresh')
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"claim \\"token_type\\" is not \\"access\\"
