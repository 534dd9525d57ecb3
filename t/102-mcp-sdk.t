# End to end with the official MCP TypeScript SDK client
# (scripts/mcp/client.cjs, @modelcontextprotocol/sdk as pinned in
# scripts/mcp/package-lock.json) through the gateway to the real MCP server:
# it connects (initialize, session, notifications) as it does directly,
# each role lists its own tools, a shown tool answers and a hidden one is
# refused.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce l1_ready repo_root);
use JSON::PP ();

repeat_each(1);
no_shuffle();

plan tests => 12;

our $N = nonce();
our $J = JSON::PP->new->canonical;

# runs the SDK client; returns (exit status, its answer decoded, its output:
# the answer, or the error it printed)
sub client {
    my ($token, @args) = @_;
    local $ENV{SARK_TOKEN} = $token // '';
    my $cmd = join ' ', map { "'$_'" } 'node', repo_root() . '/scripts/mcp/client.cjs', @args;
    my $out = `$cmd 2>&1`;
    my $status = $? >> 8;
    return ($status, scalar(eval { $J->decode($out) }), $out);
}

our $GW = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/mcp/everything";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }

    location /mcp/everything {
        sark_mcp          on;
        sark_authz_server everything;
        proxy_pass        http://127.0.0.1:$TEST_NGINX_MCP_PORT/mcp;
        proxy_http_version 1.1;
        proxy_buffering   off;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: the SDK client through the gateway: each role its own tools; hidden tools refused on call
--- init
l1_ready() or diag('the worker did not learn the policy revision');
my ($st, $direct) = main::client(undef, "http://127.0.0.1:$ENV{TEST_NGINX_MCP_PORT}/mcp", 'list');
is($st, 0, 'directly: the SDK client lists the tools');
is(scalar @{ $direct->{tools} || [] }, 13, 'directly: 13 tools');

my %want = (
    admin   => $direct->{tools},
    guest   => [qw(echo get-tiny-image)],
    analyst => [qw(echo get-annotated-message get-structured-content get-sum simulate-research-query)],
);
for my $role (qw(admin analyst guest)) {
    my $t = jwt(sub => "u-$main::N-$role", email => "$role\@example.com", roles => [$role]);
    my ($s, $got, $err) = main::client($t, $main::GW, 'list');
    is_deeply($got->{tools}, $want{$role}, "$role: the SDK lists its own tools through the gateway")
        or diag($err);
}

my $g = jwt(sub => "u-$main::N-guest", email => 'guest@example.com', roles => ['guest']);
my ($s, $got, $err) = main::client($g, $main::GW, 'call', 'echo', '{"message":"sdk"}');
is($got->{content}[0]{text} // '', 'Echo: sdk', 'guest: a shown tool answers through the SDK') or diag($err);
($s, $got, $err) = main::client($g, $main::GW, 'call', 'get-env', '{}');
is($s, 1, 'guest: calling a hidden tool fails in the SDK');
like($err, qr/"code":-32003/, 'guest: with the JSON-RPC denial');
like($err, qr/Denied/, 'guest: and the policy\'s reason');

($s, $got, $err) = main::client(undef, $main::GW, 'list');
isnt($s, 0, 'no token: the SDK client cannot connect');
--- request
GET /mcp/everything
--- error_code: 401
--- no_error_log
[alert]
