# Agent-to-agent decisions (POST /api/v1/gateway/authorize-a2a, sark_api
# authorize_a2a): agent tokens against the real policies/a2a.rego through
# sarkd and OPA, SARK's a2a cases both ways, max_delegation_depth, the
# source agent taken from the token (a body cannot raise its trust), L1
# caching and one audit row per decision with event_type a2a.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize poll_until audit_rows_for);

repeat_each(1);
no_shuffle();

plan tests => 47;

our $N = nonce();

# agent(ID, TRUST, CAPS...): an agent token (no sub: agent_id names it)
sub agent {
    my ($id, $trust, @caps) = @_;
    return jwt(sub => undef, email => undef, roles => undef, teams => undef,
               agent_id => "$id-$main::N", agent_type => 'service', trust_level => $trust,
               capabilities => \@caps, environment => 'prod');
}

sub a2a {
    my ($token, $body) = @_;
    return authorize($body, token => $token, path => '/api/v1/gateway/authorize-a2a');
}

sub target { my ($id, $trust, @caps) = @_; { id => "$id-$main::N", name => $id, trust_level => $trust, capabilities => \@caps } }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => "    location = /api/v1/gateway/authorize-a2a { sark_api authorize_a2a; }\n");
});

run_tests();

__DATA__

=== TEST 1: SARK's a2a cases: trust levels, capabilities, delegation, each with its reason and max_delegation_depth
--- init
my @cases = (
    ['critical invokes a high agent', ['crit', 'critical'], 'a2a:invoke', ['t1', 'high'], {},
     1, qr/^Allowed: critical trust agent crit-\S+ can invoke any agent$/, 3],
    ['high invokes a medium agent', ['hi', 'high'], 'a2a:invoke', ['t2', 'medium'], {},
     1, qr/^Allowed: high trust agent hi-\S+ can invoke medium trust agent t2$/, 3],
    ['medium invokes a high agent', ['med', 'medium'], 'a2a:invoke', ['t3', 'high'], {},
     0, qr/^Denied: insufficient trust level or missing capabilities$/, 0],
    ['low invokes a critical agent', ['low', 'low'], 'a2a:invoke', ['t4', 'critical'], {},
     0, qr/^Low trust agents cannot invoke high\/critical trust agents$/, 0],
    ['research agent queries a query agent', ['res', 'low', 'research', 'database_access'], 'a2a:invoke',
     ['t5', 'medium', 'query'], { tool_name => 'query_database' },
     1, qr/^Allowed: research agent res-\S+ can use query_database on query agent t5$/, 1],
    ['query_database without database_access', ['res2', 'low', 'research'], 'a2a:invoke',
     ['t6', 'medium', 'query'], { tool_name => 'query_database' },
     0, qr/^Source agent lacks required capability for this action$/, 0],
    ['medium delegates to low', ['dm', 'medium'], 'a2a:delegate', ['t7', 'low'], { context => { delegation_depth => 1 } },
     1, qr/^Allowed: medium trust agent dm-\S+ can delegate to low trust agent t7$/, 2],
    ['medium delegates past its depth', ['dm2', 'medium'], 'a2a:delegate', ['t8', 'low'], { context => { delegation_depth => 2 } },
     0, qr/^Max delegation depth exceeded$/, 0],
    ['equal trust delegates without the capability', ['eq', 'high'], 'a2a:delegate', ['t9', 'high'], {},
     0, qr/^Denied: insufficient trust level or missing capabilities$/, 0],
    ['a token without trust_level', ['none', undef], 'a2a:invoke', ['t10', 'low'], {},
     0, qr/^Source agent has no valid trust level$/, 0],
);
for my $c (@cases) {
    my ($what, $src, $action, $tgt, $more, $allow, $reason, $depth) = @$c;
    my $r = main::a2a(main::agent(@$src), { action => $action, target_agent => main::target(@$tgt), %$more });
    is($r->{status}, 200, "$what: 200");
    my $j = $r->{json} || {};
    ok(($j->{allow} ? 1 : 0) == $allow && ($j->{reason} // '') =~ $reason
       && ($j->{max_delegation_depth} // -1) == $depth, "$what: allow $allow, its reason, max_delegation_depth $depth")
        or diag($r->{body});
}
--- request
GET /api/v1/gateway/authorize-a2a
--- error_code: 405



=== TEST 2: the answer's shape; the second ask is an L1 hit with the same max_delegation_depth; audited as a2a
--- init
my $t = main::agent('shape', 'high');
my $body = { action => 'a2a:invoke', target_agent => main::target('tgt', 'low'), tool_name => 'summarize',
             parameters => { doc => 1 }, context => { workflow_id => "wf-$main::N" } };
my $r = main::a2a($t, $body);
like($r->{body}, qr/^\{"allow":true,"reason":"Allowed: high trust agent shape-\S+ can invoke low trust agent tgt","audit_id":"[0-9a-f-]{36}","cache_ttl":180,"max_delegation_depth":3,"metadata":\{"policy_revision":"[0-9a-f]+","evaluated_at":"[^"]+","cache":"MISS"\}\}$/,
     'allow, reason, cache_ttl (300 capped by the medium TTL), max_delegation_depth, metadata');
my $r2 = main::a2a($t, $body);
is($r2->{json}{metadata}{cache}, 'L1', 'asked again: L1');
is($r2->{json}{max_delegation_depth}, 3, 'L1 keeps max_delegation_depth');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("shape-$main::N"); @rows >= 2 });
is(scalar(@rows), 2, 'two rows');
is(join(' ', map { $_ // '' } @{ $rows[0] }{qw(event_type agent_id action server_name tool_name decision)}),
   "a2a shape-$main::N a2a:invoke tgt-$main::N summarize allow", 'event_type a2a, agent_id, action, target, tool, decision');
is($rows[0]{id}, $r->{json}{audit_id}, 'the row is the answer\'s audit_id');
is($rows[1]{cache_layer}, 'L1', 'the second row says L1');
--- request
GET /api/v1/gateway/authorize-a2a
--- error_code: 405



=== TEST 3: the source agent is the token's: a body cannot raise its trust or add capabilities, nor speak for another agent
--- init
my $t = main::agent('weak', 'low');
my $r = main::a2a($t, { action => 'a2a:invoke', target_agent => main::target('strong', 'critical'),
                        source_agent => { id => "weak-$main::N", name => 'Weak', trust_level => 'critical',
                                          capabilities => ['orchestrator'] } });
ok($r->{status} == 200 && !$r->{json}{allow}, 'trust_level and capabilities in the body are not taken: denied')
    or diag($r->{body});
is($r->{json}{reason}, 'Low trust agents cannot invoke high/critical trust agents', 'the token\'s low trust decided');
$r = main::a2a($t, { action => 'a2a:invoke', target_agent => main::target('x', 'low'),
                     source_agent => { id => 'someone-else' } });
is("$r->{status} $r->{json}{error}{code}", '400 GW-100', 'another source id: 400');
like($r->{json}{error}{message}, qr/names another agent/, 'says so');
$r = main::a2a($t, { action => 'a2a:invoke', target_agent => main::target('named', 'low'),
                     source_agent => { name => 'Weakling' } });
like($r->{json}{reason} // '', qr/^Allowed: low trust agent Weakling can invoke low trust agent named$/,
     'a display name from the body is used in the reason');
--- request
GET /api/v1/gateway/authorize-a2a
--- error_code: 405



=== TEST 4: bad requests: no agent token, bad action, target missing or malformed, wrong types
--- init
my $t = main::agent('bad', 'high');
my $r = authorize({ action => 'a2a:invoke', target_agent => main::target('x', 'low') },
                  token => jwt(roles => ['admin']), path => '/api/v1/gateway/authorize-a2a');
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '401 AU-002 not an agent token: it has no agent_id',
   'a user token: 401');
$r = authorize({ action => 'a2a:invoke' }, path => '/api/v1/gateway/authorize-a2a');
is("$r->{status} $r->{json}{error}{code}", '401 AU-001', 'no token: 401');
$r = authorize({ action => 'a2a:invoke' }, path => '/api/v1/gateway/authorize-a2a',
               token => jwt(sub => undef, agent_id => 'e', trust_level => 'high', expired => 1));
is("$r->{status} $r->{json}{error}{code}", '401 AU-003', 'expired agent token: 401 AU-003');
my @cases = (
    ['gateway action', { action => 'gateway:tool:invoke', target_agent => main::target('x', 'low') }, qr/unknown action/],
    ['no target', { action => 'a2a:invoke' }, qr/missing required field "target_agent"/],
    ['target not an object', { action => 'a2a:invoke', target_agent => 'x' }, qr/"target_agent" must be an object/],
    ['target without id', { action => 'a2a:invoke', target_agent => { trust_level => 'low' } }, qr/missing required field "id"/],
    ['context not an object', { action => 'a2a:invoke', target_agent => main::target('x', 'low'), context => [1] },
     qr/"context" must be an object/],
    ['tool_name a number', { action => 'a2a:invoke', target_agent => main::target('x', 'low'), tool_name => 5 },
     qr/"tool_name" must be a string/],
);
for my $c (@cases) {
    my ($what, $body, $msg) = @$c;
    $r = main::a2a($t, $body);
    ok($r->{status} == 400 && ($r->{json}{error}{message} // '') =~ $msg, "$what: 400, says why") or diag($r->{body});
}
$r = main::a2a($t, '{"action":"a2a:invoke",');
is($r->{status}, 400, 'malformed JSON: 400');
is(scalar(audit_rows_for("bad-$main::N")), 0, 'no row for a refused request');
--- request
GET /api/v1/gateway/authorize-a2a
--- error_code: 405
