# Enforced locations whose sark_authz_* values have no variables ask the
# same question on every request, so the decision key made for a token at
# such a location is remembered with the verified token.  These tests
# check that what is remembered never answers for another token, another
# location or another policy revision.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request poll_until l1_ready opa_bundle
    stack audit_rows_for);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Block 1: 5 calls x 3 rounds x 3 checks + 2; block 2: 6 + 2; block 3: 3 + 2.
plan tests => repeat_each() * (45 + 2 + 6 + 2 + 3 + 2);

our $N = nonce();

# `make t` starts PostgreSQL; a suite run on its own may need it
stack('start', 'postgres');

our $developer = jwt(sub => "u-$N-dev", email => 'd@example.com', roles => ['developer']);
our $analyst = jwt(sub => "u-$N-analyst", email => 'a@example.com', roles => ['analyst']);

our $restore;       # set while OPA serves a modified policy

END {
    opa_bundle() if $restore;
}

# get(PATH, TOKEN): [status, $sark_cache, $sark_user]
sub get {
    my ($path, $token) = @_;
    my $r = http_request('GET', $path, token => $token);
    return [$r->{status}, $r->{headers}{'x-sark-cache'} // '', $r->{headers}{'x-sark-user'} // ''];
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config())
        unless defined $block->http_config;
    my $loc = sub {
        my ($tool, $server) = @_;
        return <<"_EOC_";
    location = /fixed/$tool {
        sark_authz         on;
        sark_authz_action  gateway:tool:invoke;
        sark_authz_server  $server;
        sark_authz_tool    $tool;
        add_header X-Sark-Cache \$sark_cache always;
        add_header X-Sark-User  \$sark_user always;
        add_header X-Sark-Audit \$sark_audit_id always;
        empty_gif;
    }
_EOC_
    };
    # (the decision API for l1_ready)
    $block->set_value(config => "location = /api/v1/gateway/authorize { sark_api authorize; }\n"
                                . $loc->('get_repo', 'github-mcp')
                                . $loc->('close_issue', 'github-mcp')
                                . $loc->('list_tables', 'postgres-mcp'))
        unless defined $block->config;
    $block->set_value(more_headers => "Authorization: Bearer $main::developer")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: two tokens across three fixed locations, three rounds: every answer is the one made for that token and location
--- init
l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
my @calls = (
    ['/fixed/get_repo',    'developer', 200],
    ['/fixed/close_issue', 'developer', 403],
    ['/fixed/list_tables', 'developer', 403],
    ['/fixed/list_tables', 'analyst',   200],
    ['/fixed/get_repo',    'analyst',   403],
);
for my $round (1 .. 3) {
    for my $c (@calls) {
        my ($path, $who, $status) = @$c;
        my $r = main::get($path, $who eq 'developer' ? $main::developer : $main::analyst);
        my $what = "round $round, $path as $who";
        is($r->[0], $status, "$what: $status");
        like($r->[1], $round == 1 ? qr/^(MISS|L2)$/ : qr/^L1$/,
             "$what: " . ($round == 1 ? 'a fresh decision' : 'from L1'));
        is($r->[2], $who eq 'developer' ? "u-$main::N-dev" : "u-$main::N-analyst",
           "$what: \$sark_user");
    }
}
--- request
GET /fixed/get_repo
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: a policy change flips a cached allow at a fixed location to a deny, with no invalidate call
--- init
my $r = main::get('/fixed/list_tables', $main::analyst);
is_deeply([@$r[0, 1]], [200, 'L1'], 'list_tables allowed for the analyst, from L1');

$main::restore = 1;
opa_bundle('test_deny_rule.rego' => <<'_REGO_');
package sark.gateway

deny contains "list_tables is disabled by the test policy" if {
	input.tool_name == "list_tables"
}
_REGO_

my $last;
ok(poll_until(5, sub { $last = main::get('/fixed/list_tables', $main::analyst); $last->[0] == 403 }),
   'the cached allow became a 403 within 5 s');
like($last->[1], qr/^(MISS|L2)$/, 'the first 403 is a fresh decision');
my @after = map { main::get('/fixed/list_tables', $main::analyst)->[0] } 1 .. 5;
is_deeply(\@after, [(403) x 5], 'the old allow is never served again');

opa_bundle();
undef $main::restore;
ok(poll_until(5, sub { main::get('/fixed/list_tables', $main::analyst)->[0] == 200 }),
   'the original policy restored: allowed again');
is(main::get('/fixed/get_repo', $main::developer)->[0], 200,
   'the developer is still allowed get_repo');
--- request
GET /fixed/close_issue
--- error_code: 403
--- no_error_log
[error]



=== TEST 3: audit rows of fixed locations name the token's user and each location's query, remembered or not
--- init
my $tok = jwt(sub => "u-$main::N-audit", email => 'x@example.com', roles => ['developer']);
my %want;
# repeats at one location use what the token's slot remembers
my @calls = (['get_repo', 'MISS'], ['get_repo', 'L1'], ['get_repo', 'L1'],
             ['close_issue', 'MISS'], ['close_issue', 'L1'], ['get_repo', 'L1']);
for my $c (@calls) {
    my ($tool, $cache) = @$c;
    my $r = http_request('GET', "/fixed/$tool", token => $tok);
    $want{ $r->{headers}{'x-sark-audit'} // '' } = join ' ', 'authorization', "u-$main::N-audit",
        'gateway:tool:invoke', 'github-mcp', $tool, 'medium',
        $tool eq 'get_repo' ? 'allow' : 'deny', $cache;
}
is(scalar(grep { /^[0-9a-f-]{36}$/ } keys %want), 6, 'six answers with distinct audit ids');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("u-$main::N-audit"); @rows >= 6 });
is(scalar(@rows), 6, 'six rows');
my %got = map { $_->{id} => join(' ', map { $_ // '<NULL>' } @$_{qw(event_type user_id action
              server_name tool_name sensitivity_level decision cache_layer)}) } @rows;
is_deeply(\%got, \%want, 'each row holds what was asked and decided');
--- request
GET /fixed/get_repo
--- error_code: 200
--- no_error_log
[error]
