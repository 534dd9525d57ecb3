# The decision API remembers, with each verified token, the last body it
# answered at a location: the same body again (byte for byte, same policy
# revision) is not parsed again.  These tests check that what is
# remembered never answers a different body, another token or a body it
# cannot stand for (escaped strings, refused requests), and that the
# audit rows of remembered requests are complete.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize decision_is poll_until l1_ready
    stack audit_rows_for http_request);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

# Block 1: 16 decision_is + 2 + 2; block 2: 8 + 2; block 3: 4 + 2; block 4:
# 3 + 2; block 5: 2 x 6 + 2.
plan tests => repeat_each() * (16 + 2 + 2 + 8 + 2 + 4 + 2 + 3 + 2 + 12 + 2);


our $N = nonce();
our $ADMIN_KEY = "admin-key-$N";

# `make t` starts PostgreSQL; a suite run on its own may need it
stack('start', 'postgres');

sub tok {
    my ($name, $role) = @_;
    return jwt(sub => "u-$N-$name", email => "$name\@example.com", roles => [$role]);
}

our $API = '/api/v1/gateway/authorize';

# two bodies of the same length: the analyst may list tables, not drop them
our $LIST = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}';
our $DROP = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"drop_tables"}';

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config("sark_admin_key $ADMIN_KEY"))
        unless defined $block->http_config;
    $block->set_value(config => "location = $API { sark_api authorize; }\n"
                                . "location = /api/v1/cache/invalidate { sark_api invalidate; }\n")
        unless defined $block->config;
    $block->set_value(request => "POST $API\n$LIST") unless defined $block->request;
    $block->set_value(more_headers => 'Authorization: Bearer ' . tok('plain', 'analyst'))
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: same-length bodies and two tokens, each repeated and alternated: every answer is the one for that body and token
--- init
l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
my $analyst = main::tok('analyst', 'analyst');
my $developer = main::tok('dev', 'developer');
my @calls = (
    [$main::LIST, $analyst, 'analyst', 1, 'MISS'],
    [$main::LIST, $analyst, 'analyst', 1, 'L1'],
    [$main::LIST, $analyst, 'analyst', 1, 'L1'],
    [$main::DROP, $analyst, 'analyst', 0, 'MISS'],
    [$main::DROP, $analyst, 'analyst', 0, 'L1'],
    [$main::LIST, $analyst, 'analyst', 1, 'L1'],
    [$main::LIST, $developer, 'developer', 0, 'MISS'],
    [$main::LIST, $developer, 'developer', 0, 'L1'],
);
for my $c (@calls) {
    my ($body, $tok, $who, $allow, $cache) = @$c;
    my $what = ($body eq $main::LIST ? 'list_tables' : 'drop_tables') . " as $who";
    decision_is(authorize($body, token => $tok, path => $main::API),
                {allow => $allow, cache => $cache}, "$what: " . ($allow ? 'allow' : 'deny') . " ($cache)");
    decision_is(authorize($body, token => $tok, path => $main::API),
                {allow => $allow, cache => 'L1'}, "$what again: the same answer from L1");
}

# answers from L1 to the same body: the same text but for their audit ids
my @same = map { authorize($main::LIST, token => $analyst, path => $main::API) } 1 .. 3;
my @ids = map { $_->{json}{audit_id} // '' } @same;
is(scalar(keys %{{ map { $_ => 1 } grep { /^[0-9a-f-]{36}$/ } @ids }}), 3, 'three distinct audit ids');
(my $t0 = $same[0]{body}) =~ s/"audit_id":"[^"]*"/"audit_id":""/;
is(scalar(grep { (my $t = $_->{body}) =~ s/"audit_id":"[^"]*"/"audit_id":""/; $t eq $t0 } @same), 3,
   'the rest of the three answers is the same text') or diag($same[0]{body});
--- error_code: 200
--- response_body_like: ^\{"allow":true,"reason":"Allowed: analyst plain@example.com can query database",
--- no_error_log
[error]



=== TEST 2: a repeated body with escaped strings is answered as the same request unescaped
--- init
my $tok = main::tok('escaped', 'analyst');
(my $escaped = $main::LIST) =~ s/list_tables/list\\u005ftables/;
for my $i (1 .. 4) {
    decision_is(authorize($escaped, token => $tok, path => $main::API),
                {allow => 1, cache => 'L1'}, "escaped tool name, call $i: allowed from L1")
        if $i > 1;
    decision_is(authorize($main::LIST, token => $tok, path => $main::API),
                {allow => 1, cache => $i == 1 ? 'MISS' : 'L1'}, "plain tool name, call $i: the same decision");
}
decision_is(authorize($escaped, token => $tok, path => $main::API),
            {allow => 1, cache => 'L1'}, 'escaped again after the plain one: L1');
--- error_code: 200
--- no_error_log
[error]



=== TEST 3: a refused body stays refused however often it comes, and does not stand for a valid one
--- init
my $tok = main::tok('refused', 'analyst');
(my $bad = $main::LIST) =~ s/gateway:tool:invoke/gateway:tool:invokf/;
for my $i (1 .. 3) {
    my $r = authorize($bad, token => $tok, path => $main::API);
    is($r->{status}, 400, "unknown action, call $i: 400");
}
decision_is(authorize($main::LIST, token => $tok, path => $main::API),
            {allow => 1}, 'the valid body next to it is decided');
--- error_code: 200
--- no_error_log
[error]



=== TEST 4: audit rows of repeated bodies, escaped or not, name the token's user and the body's query
--- init
my $tok = main::tok('audit', 'analyst');
(my $escaped = $main::LIST) =~ s/list_tables/list\\u005ftables/;
my %want;
for my $body ($main::LIST, $main::LIST, $main::DROP, $main::DROP, $escaped, $escaped, $main::LIST) {
    my $r = authorize($body, token => $tok, path => $main::API);
    my $tool = $body eq $main::DROP ? 'drop_tables' : 'list_tables';
    $want{ $r->{json}{audit_id} // '' } = join ' ', "u-$main::N-audit", 'gateway:tool:invoke',
        'postgres-mcp', $tool, 'medium', $tool eq 'list_tables' ? 'allow' : 'deny';
}
is(scalar(grep { /^[0-9a-f-]{36}$/ } keys %want), 7, 'seven answers with distinct audit ids');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("u-$main::N-audit"); @rows >= 7 });
my %got = map { $_->{id} => join(' ', map { $_ // '<NULL>' } @$_{qw(user_id action server_name
              tool_name sensitivity_level decision)}) } @rows;
is_deeply(\%got, \%want, 'seven rows, each with what its request asked (unescaped) and got');
--- error_code: 200
--- no_error_log
[error]



=== TEST 5: a repeated body whose cached decision was invalidated is decided again as it was asked (escaped strings decoded), and its next answers tell of the new decision
--- init
(my $escaped = $main::LIST) =~ s/list_tables/list\\u005ftables/;
for my $case (['again', $escaped, 'escaped'], ['again-plain', $main::LIST, 'plain']) {
    my ($who, $body, $kind) = @$case;
    my $tok = main::tok($who, 'analyst');
    decision_is(authorize($body, token => $tok, path => $main::API),
                {allow => 1, cache => 'MISS'}, "$kind body: allowed");
    my $first = authorize($body, token => $tok, path => $main::API);
    decision_is($first, {allow => 1, cache => 'L1'}, "$kind body again: from L1");
    my $r = http_request('POST', '/api/v1/cache/invalidate', headers => { 'X-Admin-Key' => $main::ADMIN_KEY },
                         body => qq{{"pattern":"authz:u-$main::N-$who:*"}});
    is($r->{status}, 200, "$kind body: its entries invalidated");
    my $fresh = authorize($body, token => $tok, path => $main::API);
    decision_is($fresh, {allow => 1, cache => qr/^(MISS|L2)$/},
                "$kind body again: decided afresh, still allowed");
    # (decisions made just after an invalidation are not kept in L1 at once)
    my ($prev, $next) = ($fresh);
    poll_until(5, sub {
        $next = authorize($body, token => $tok, path => $main::API);
        return 1 if ($next->{json}{metadata}{cache} // '') eq 'L1';
        $prev = $next;
        return 0;
    });
    decision_is($next, {allow => 1, cache => 'L1'}, "$kind body: from L1 again");
    is($next->{json}{metadata}{evaluated_at}, $prev->{json}{metadata}{evaluated_at},
       "$kind body: the L1 answer tells when the decision it holds was made, not the first one")
        or diag("first $first->{json}{metadata}{evaluated_at}");
}
--- error_code: 200
--- no_error_log
[error]
