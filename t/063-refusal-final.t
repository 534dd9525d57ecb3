# A refusal on an enforced location is final.  The directives that change
# a request's flow after the access phase (try_files, error_page, mirror,
# satisfy any, post_action) and subrequests into an enforced location
# never turn a refused request (no token, a forged token, a denied
# decision, an outage) into content or an upstream request: the client
# gets the JSON envelope and the backend sees nothing.  Allowed requests
# still take those paths, which proves each location reaches the backend
# when it should.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request l1_ready);
use Time::HiRes ();

repeat_each(1);
no_shuffle();

our @PATHS = qw(/tf-named/ /tf-uri/ /ep-named/ /ep-uri/ /mirror/ /satisfy/ /post-action/);
our @REFUSALS = ('no token', 'forged token', 'denied');

# TEST 1: 2 per path and refusal, 2 per path for the allowed request, 3
# for the block; TEST 2: 2 per path, 1, and 3 for the block; TEST 3: 2 and
# 2 for the block; TEST 4: 2 per path and refusal (the outage included),
# 3 for the block.
plan tests => @PATHS * (@REFUSALS * 2 + 2) + 3
              + @PATHS * 2 + 1 + 3
              + 2 + 2
              + @PATHS * (@REFUSALS + 1) * 2 + 3;

our $N = nonce();
$ENV{TEST_NGINX_BACKEND_PORT} = $ENV{TEST_NGINX_SERVER_PORT} + 7;
our $BACKEND_LOG = html_dir() . '/../logs/backend.log';

sub backend_hits {
    open my $fh, '<', $BACKEND_LOG or return 0;
    my @lines = <$fh>;
    return scalar @lines;
}

sub token_for {
    my ($case) = @_;
    return undef if $case eq 'no token';
    return jwt(sub => "u-$N-forged", wrong_secret => 1) if $case eq 'forged token';
    return jwt(sub => "u-$N-dev", email => 'd@example.com', roles => ['developer']);
}

our %EXPECT = (
    'no token'     => [401, 'AU-001'],
    'forged token' => [401, 'AU-002'],
    'denied'       => [403, 'AZ-001'],
    'outage'       => [503, 'OPA-001'],
);

# One refused request: status and envelope, and the backend not reached
# (mirror and post_action reach it after the answer, so wait a little).
# With `compat`, the location answers as SARK's clients expect: the same
# status, a {"detail"} body.
sub refused {
    my ($path, $case, $tool, $compat) = @_;
    my $before = backend_hits();
    my $r = http_request('GET', "${path}x?tool=$tool", token => token_for($case));
    my ($status, $code) = @{ $EXPECT{$case} };
    my $code_got = $r->{json} && ref $r->{json}{error} ? $r->{json}{error}{code} : '';
    ($code_got, $code) = (defined $r->{json}{detail} ? 'detail' : '', 'detail')
        if $compat && ref $r->{json} eq 'HASH';
    ok($r->{status} == $status && $code_got eq $code
       && ($r->{headers}{'content-type'} // '') eq 'application/json',
       "$path, $case: $status $code with the JSON envelope")
        or diag("got $r->{status} $code_got: $r->{body}");
    Time::HiRes::sleep(0.3);
    is(backend_hits() - $before, 0, "$path, $case: the backend was not reached");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config() . <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        access_log logs/backend.log;
        location / { return 200 "BACKEND REACHED\n"; }
    }
    upstream backend { server 127.0.0.1:$TEST_NGINX_BACKEND_PORT; }
_EOC_
    $block->set_value(config => ($block->name =~ /compat/ ? "    sark_api_compat sark;\n" : '')
                                . <<'_EOC_');
    sark_authz_action gateway:tool:invoke;
    sark_authz_server github-mcp;
    sark_authz_tool   $arg_tool;

    location /tf-named/    { sark_authz on; try_files $uri @backend; }
    location /tf-uri/      { sark_authz on; try_files $uri /open/x; }
    location /ep-named/    { sark_authz on; error_page 401 403 503 = @backend; empty_gif; }
    location /ep-uri/      { sark_authz on; error_page 401 403 503 /open/x; empty_gif; }
    location /mirror/      { sark_authz on; mirror /mirror-to; empty_gif; }
    location /satisfy/     { sark_authz on; satisfy any; allow 127.0.0.1; deny all;
                             proxy_pass http://backend; }
    location /post-action/ { sark_authz on; post_action @backend; empty_gif; }

    location /open/        { proxy_pass http://backend; }
    location @backend      { proxy_pass http://backend; }
    location = /mirror-to  { internal; proxy_pass http://backend; }

    location = /api/v1/gateway/authorize { sark_api authorize; }

    location /via-auth-request/ { auth_request /enforced-sub; proxy_pass http://backend; }
    location = /enforced-sub    { sark_authz on; sark_authz_tool get_repo; empty_gif; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: no token, a forged token, a denied decision: refused wherever the location sends requests next; allowed requests get there
--- init
l1_ready() or diag('the worker did not learn the policy revision');
for my $path (@main::PATHS) {
    main::refused($path, $_, 'close_issue') for @main::REFUSALS;
}
for my $path (@main::PATHS) {
    my $before = main::backend_hits();
    my $r = http_request('GET', "${path}x?tool=get_repo", token => main::token_for('allowed'));
    ok($r->{status} == 200, "$path, allowed: 200") or diag("got $r->{status}: $r->{body}");
    Time::HiRes::sleep(0.3);
    my $hits = main::backend_hits() - $before;
    # error_page is for errors only: an allowed request is answered there
    my $want = $path =~ m{^/ep-} ? 0 : 1;
    is($hits, $want, "$path, allowed: the backend was reached $want time(s)");
}
--- request
GET /tf-named/x?tool=close_issue
--- error_code: 401
--- response_body_like: ^\{"error":\{"code":"AU-001",
--- no_error_log
[alert]



=== TEST 2: an outage (OPA stopped) is refused with 503 everywhere too
--- init
main::stack('stop', 'opa');
for my $path (@main::PATHS) {
    # a tool never asked before: no cached decision answers it
    main::refused($path, 'outage', "outage_$main::N");
}
my $r = http_request('GET', "/satisfy/x?tool=outage2_$main::N", token => main::token_for('allowed'));
is($r->{headers}{'retry-after'} // '', '5', 'an outage says when to retry');
main::stack('start', 'opa');
--- request
GET /tf-uri/x?tool=close_issue
--- more_headers eval
"Authorization: Bearer " . main::token_for('denied')
--- error_code: 403
--- response_body_like: ^\{"error":\{"code":"AZ-001",
--- no_error_log
[alert]



=== TEST 3: a subrequest into an enforced location is refused: the access phase does not run for subrequests, so auth_request cannot be used to reach content unchecked
--- init
my $before = main::backend_hits();
my $r = http_request('GET', '/via-auth-request/x');
is($r->{status}, 403, 'no token: the subrequest is refused, so auth_request refuses');
Time::HiRes::sleep(0.3);
is(main::backend_hits() - $before, 0, 'the backend was not reached');
--- request
GET /via-auth-request/x
--- more_headers eval
"Authorization: Bearer " . main::token_for('allowed')
--- error_code: 403
--- error_log
sark: refused a subrequest to an enforced location



=== TEST 4: sark_api_compat sark changes the refusals' bodies, never their finality: no token, forged, denied, outage never reach the backend
--- init
l1_ready() or diag('the worker did not learn the policy revision');
for my $path (@main::PATHS) {
    main::refused($path, $_, 'close_issue', 1) for @main::REFUSALS;
}
main::stack('stop', 'opa');
main::refused($_, 'outage', "compat_outage_$main::N", 1) for @main::PATHS;
main::stack('start', 'opa');
--- request
GET /ep-named/x?tool=close_issue
--- more_headers eval
"Authorization: Bearer " . main::token_for('denied')
--- error_code: 403
--- response_body_like: ^\{"detail":"
--- no_error_log
[alert]
