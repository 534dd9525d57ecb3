# The MCP registry (sarkd registry load, tables mcp_servers / mcp_tools,
# pushed to the workers) and discovery (GET /api/v1/gateway/servers and
# /tools?server_name=): a tool's registered sensitivity is used when a
# question gives none (its TTL, its key, its audit row) and follows edits in
# the database; each caller sees the servers and tools the policy shows
# it, one decision per server, asked at once, cached and audited.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request poll_until audit_rows_for pg_value
    opa_evals redis_keys);
use File::Temp ();
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

repeat_each(1);
no_shuffle();

plan tests => 80;

our $N = nonce();

sub registry_cmd {
    my @args = @_;
    my $out = qx{$ENV{TEST_NGINX_REPO}/scripts/stack registry @args 2>&1};
    return ($? >> 8, $out);
}

sub user { jwt(sub => "r-$main::N-$_[0]", email => "$_[0]\@example.com", roles => [$_[1]]) }

sub servers { http_request('GET', '/api/v1/gateway/servers', token => $_[0]) }
sub tools { http_request('GET', '/api/v1/gateway/tools?server_name=' . $_[1], token => $_[0]) }

sub listing {
    my ($r) = @_;
    return join ' ', map { "$_->{name}:$_->{tools_count}" } @{ $r->{json}{servers} || [] };
}

sub write_json {
    my $f = File::Temp->new(SUFFIX => '.json');
    print $f $_[0];
    close $f;
    return $f;
}

# the other suites ask without a registry: it is emptied when this one ends,
# however it ends
END {
    if ($ENV{TEST_NGINX_REPO}) {
        my $f = write_json('{"servers": []}');
        my ($rc, $out) = registry_cmd('load', $f->filename);
        print STDERR "# could not empty the registry: $out" if $rc;
    }
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/gateway/servers { sark_api servers; }
    location = /api/v1/gateway/tools { sark_api tools; }
    location = /health/detailed { sark_api health_detailed; }
    location = /compat/servers { sark_api servers; sark_api_compat sark; }
    location = /compat/tools { sark_api tools; sark_api_compat sark; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: sarkd registry load replaces the registry in one transaction; a bad file changes nothing
--- init
my ($rc, $out) = main::registry_cmd('load', "$ENV{TEST_NGINX_REPO}/conf/registry.json");
is($rc, 0, 'load: exit 0') or diag($out);
like($out, qr/^loaded 3 servers and 12 tools from /, 'load: what it loaded');
is(pg_value("SELECT count(*) FROM mcp_tools WHERE server_name = 'postgres-mcp'"), 4, 'the tools are rows');
my @bad = (
    ['not JSON', '{"servers": [', qr/not valid JSON/],
    ['no servers array', '{"servers": {}}', qr/"servers" array/],
    ['a bad sensitivity', '{"servers":[{"name":"x","sensitivity_level":"secret"}]}', qr/servers\[0\]: "sensitivity_level"/],
    ['a server twice', '{"servers":[{"name":"x"},{"name":"x"}]}', qr/server "x" appears twice/],
    ['a tool twice', '{"servers":[{"name":"x","tools":[{"name":"t"},{"name":"t"}]}]}', qr/tool "t" appears twice/],
    ['parameters not an object', '{"servers":[{"name":"x","tools":[{"name":"t","parameters":[]}]}]}', qr/"parameters" must be an object/],
    # checked as the first, stored (jsonb) as the last: refused
    ['a member twice', '{"servers":[{"name":"x","tools":[{"name":"t","sensitivity_level":"critical","sensitivity_level":"low"}]}]}',
     qr/servers\[0\]\.tools\[0\]: member "sensitivity_level" appears twice/],
    ['"servers" twice', '{"servers":[{"name":"x"}],"servers":[]}', qr/the file: member "servers" appears twice/],
);
for my $b (@bad) {
    my ($what, $json, $msg) = @$b;
    my $f = main::write_json($json);
    ($rc, $out) = main::registry_cmd('load', $f->filename);
    ok($rc == 1 && $out =~ $msg, "$what: exit 1, says where") or diag($out);
}
is(pg_value('SELECT count(*) FROM mcp_servers'), 3, 'the registry is unchanged');
--- request
GET /api/v1/gateway/servers
--- error_code: 401



=== TEST 2: discovery: each role sees the servers and tools the policy shows it
--- init
my $r;
poll_until(10, sub { $r = main::servers(main::user('admin', 'admin')); $r->{status} == 200 });
is(main::listing($r), 'everything:4 github-mcp:4 postgres-mcp:4', 'admin: every server, every tool') or diag($r->{body});
is_deeply([sort keys %{ $r->{json}{servers}[2] }], [qw(description name owner sensitivity_level teams tools_count url)],
          'a server entry\'s fields');
is_deeply($r->{json}{servers}[2]{teams}, ['data'], 'teams as registered');
is($r->{headers}{'cache-control'} // '', 'no-store', 'Cache-Control: no-store');
is(main::listing(main::servers(main::user('ana', 'analyst'))), 'everything:2 postgres-mcp:3', 'analyst');
is(main::listing(main::servers(main::user('dev', 'developer'))), 'everything:4 github-mcp:3', 'developer');
is(main::listing(main::servers(main::user('guest', 'guest'))), 'everything:2', 'guest');
is(main::listing(main::servers(main::user('nobody', 'intern'))), '', 'no role: no server');
$r = main::tools(main::user('ana', 'analyst'), 'postgres-mcp');
is($r->{status}, 200, 'tools: 200');
is(join(' ', map { $_->{name} } @{ $r->{json}{tools} || [] }), 'describe_table execute_query list_tables',
   'analyst: the tools shown on postgres-mcp');
is($r->{json}{server_name}, 'postgres-mcp', 'names the server');
is_deeply($r->{json}{tools}[1]{parameters}{required}, ['query'], 'a tool\'s parameters schema');
is($r->{json}{tools}[1]{sensitivity_level}, 'critical', 'its registered sensitivity');
$r = main::tools(main::user('dev', 'developer'), 'postgres-mcp');
is("$r->{status} $r->{json}{error}{code}", '404 GW-404', 'developer on postgres-mcp: no tool, so no server (404, as if unknown)');
--- request
GET /api/v1/gateway/tools?server_name=postgres-mcp
--- error_code: 401



=== TEST 3: bad requests: no server_name, unknown server, no token, POST
--- init
my $t = main::user('ana', 'analyst');
my $r = http_request('GET', '/api/v1/gateway/tools', token => $t);
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '400 GW-100 missing required parameter "server_name"', 'no server_name: 400');
$r = main::tools($t, 'nope%0a');
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '404 GW-404 unknown MCP server "nope\x0a"', 'unknown server: 404, the name made safe');
$r = main::tools($t, 'postgres%2Dmcp');
is($r->{status}, 200, 'a %-encoded name is decoded');
$r = http_request('GET', '/api/v1/gateway/servers');
is("$r->{status} $r->{json}{error}{code}", '401 AU-001', 'no token: 401');
$r = http_request('POST', '/api/v1/gateway/servers', token => $t, body => '{}');
is("$r->{status} " . ($r->{headers}{allow} // ''), '405 GET, HEAD', 'POST: 405');
--- request
GET /api/v1/gateway/servers
--- error_code: 401



=== TEST 4: one decision per server, asked at once (three pending at OPA together), cached, shared with /tools, audited
--- init
my $t = main::user('count', 'analyst');
stack('pause', 'opa');
my $pid = fork // die "fork: $!";
if ($pid == 0) { main::servers($t); POSIX::_exit(0) }
my $pending = 0;
poll_until(5, sub {
    my $d = http_request('GET', '/health/detailed');
    $pending = $d->{json}{sarkd}{pending_decisions} // 0;
    $pending >= 3;
});
stack('resume', 'opa');
waitpid($pid, 0);
is($pending, 3, 'the three questions wait at OPA together');
my $t2 = main::user('count2', 'analyst');
my $before = opa_evals();
my $r = main::servers($t2);
is(main::listing($r), 'everything:2 postgres-mcp:3', 'a fresh caller\'s listing');
is(opa_evals() - $before, 3, 'three OPA evaluations for three uncached decisions');
$before = opa_evals();
main::servers($t2);
main::tools($t2, 'postgres-mcp');
is(opa_evals() - $before, 0, 'asked again, and its /tools: no evaluation (L1)');
my @rows;
poll_until(10, sub { @rows = audit_rows_for("r-$main::N-count2"); @rows >= 7 });
is(scalar(@rows), 7, 'every decision audited (3 + 3 + 1)');
is(scalar(grep { $_->{action} eq 'gateway:tool:discover' && ($_->{metadata} // '') =~ /"discovery": true/ } @rows), 7,
   'as gateway:tool:discover, marked discovery');
is(join(' ', sort map { $_->{server_name} } @rows[0 .. 2]), 'everything github-mcp postgres-mcp', 'one per server');
--- request
GET /api/v1/gateway/servers
--- error_code: 401



=== TEST 5: a question without a sensitivity gets the registered one: TTL, key and audit row; an edit in the database follows
--- init
my $t = main::user('sens', 'analyst');
my $q = { action => 'gateway:tool:invoke', server_name => 'postgres-mcp', tool_name => 'execute_query',
          parameters => { query => "select $main::N" } };
my $r = authorize($q, token => $t);
is($r->{json}{cache_ttl}, 30, 'execute_query is critical: cache_ttl 30') or diag($r->{body});
ok(scalar(redis_keys("authz:r-$main::N-sens:gateway:tool:invoke:postgres-mcp:execute_query:critical:*")), 'its L2 key says critical');
$r = authorize({ %$q, sensitivity_level => 'low' }, token => $t);
is($r->{json}{cache_ttl}, 30, 'a lower sensitivity in the request does not lower it: cache_ttl 30');
$r = authorize({ %$q, tool_name => 'list_tables', parameters => {}, sensitivity_level => 'high' }, token => $t);
is($r->{json}{cache_ttl}, 60, 'a higher one raises it: list_tables (low) asked as high, cache_ttl 60');
authorize({ %$q, tool_name => 'describe_table', parameters => { table => 't' } }, token => $t);
my @rows;
poll_until(10, sub { @rows = audit_rows_for("r-$main::N-sens"); @rows >= 4 });
is(join(' ', map { $_->{sensitivity_level} } @rows), 'critical critical high high',
   'rows: the tool\'s (asked without, then as low), the request\'s higher one, the server\'s');
pg_value("UPDATE mcp_tools SET sensitivity_level = 'medium' WHERE server_name = 'postgres-mcp' AND name = 'execute_query' RETURNING name");
ok(poll_until(10, sub { authorize($q, token => $t)->{json}{cache_ttl} == 60 }), 'edited to medium in the database: cache_ttl 60 within seconds');
pg_value("UPDATE mcp_tools SET sensitivity_level = 'critical' WHERE server_name = 'postgres-mcp' AND name = 'execute_query' RETURNING name");
ok(poll_until(10, sub { authorize($q, token => $t)->{json}{cache_ttl} == 30 }), 'and back: 30, not the cached answer of the other sensitivity');
--- request
GET /api/v1/gateway/servers
--- error_code: 401



=== TEST 6: an outage fails the listing (503), never a partial list
--- init
my $t = main::user('outage', 'admin');
stack('stop', 'opa');
my $r = main::servers($t);
stack('start', 'opa');
is("$r->{status} $r->{json}{error}{code}", '503 OPA-001', 'OPA stopped: 503 OPA-001');
ok($r->{headers}{'retry-after'}, 'Retry-After');
ok(poll_until(15, sub { main::servers($t)->{status} == 200 }), 'OPA back: the listing again');
--- request
GET /api/v1/gateway/servers
--- error_code: 401



=== TEST 7: sark_api_compat sark: SARK's bare arrays of GatewayServerInfo / GatewayToolInfo, the same entries as our answer; server_name optional; an outage an empty list
--- init
my $t = main::user('compat', 'analyst');
my $ours = main::servers($t);
my $r = http_request('GET', '/compat/servers', token => $t);
is(ref $r->{json}, 'ARRAY', 'servers: a bare array') or diag($r->{body});
is(join(' ', map { "$_->{server_name}:$_->{tools_count}" } @{ $r->{json} }), main::listing($ours),
   'the servers and counts of our answer');
my ($pg) = grep { $_->{server_name} eq 'postgres-mcp' } @{ $r->{json} };
is_deeply([sort keys %$pg], [qw(access_restrictions authorized_teams created_at health_status sensitivity_level
          server_id server_name server_url tools_count updated_at)], 'GatewayServerInfo\'s fields');
is(join(' ', $pg->{server_id}, $pg->{server_url}, $pg->{sensitivity_level}, @{ $pg->{authorized_teams} },
        $pg->{health_status}, defined $pg->{access_restrictions} ? 'set' : 'null'),
   'postgres-mcp http://127.0.0.1:3002/mcp high data unknown null', 'from the registry');
$r = http_request('GET', '/compat/tools?server_name=postgres-mcp', token => $t);
is(join(' ', map { "$_->{server_name}/$_->{tool_name}:$_->{sensitivity_level}" } @{ $r->{json} }),
   'postgres-mcp/describe_table:high postgres-mcp/execute_query:critical postgres-mcp/list_tables:low',
   'tools: the tools shown, a tool without a sensitivity gets its server\'s');
my ($eq) = grep { $_->{tool_name} eq 'execute_query' } @{ $r->{json} };
is_deeply([sort keys %$eq], [qw(description parameters required_capabilities sensitive_params sensitivity_level
          server_name tool_name)], 'GatewayToolInfo\'s fields');
is(JSON::PP->new->canonical->encode($eq->{parameters}), '[{"name":"query","required":true,"schema":{"type":"string"}}]',
   'the schema\'s properties as a list of parameters');
is($eq->{description}, 'Run one SQL statement', 'the description');
my @all = map { my $s = $_->{name}; map { "$s/$_->{name}" } @{ main::tools($t, $s)->{json}{tools} } }
          @{ $ours->{json}{servers} };
$r = http_request('GET', '/compat/tools', token => $t);
is(join(' ', map { "$_->{server_name}/$_->{tool_name}" } @{ $r->{json} }), join(' ', @all),
   'no server_name: the tools of every server, as our answers per server');
$r = http_request('GET', '/compat/tools?server_name=nope', token => $t);
is("$r->{status} $r->{body}", "200 []\n", 'an unknown server: an empty list');
$r = http_request('GET', '/compat/tools?server_name=', token => $t);
is("$r->{status} $r->{json}{detail}[0]{type} @{ $r->{json}{detail}[0]{loc} }", '422 value_error query server_name',
   'an empty server_name: 422');
$r = http_request('GET', '/compat/servers');
is("$r->{status} $r->{json}{error_type}", '401 authentication_error', 'no token: 401 as SARK');
$r = http_request('GET', '/compat/tools?SERVER_NAME=postgres-mcp', token => $t);
is(scalar(@{ $r->{json} || [] }), scalar(@all), 'a name in another case is not server_name (every server\'s tools)');
$r = http_request('GET', '/compat/tools?server_name=postgres-mcp&include_tools=1', token => $t);
is("$r->{status} " . scalar(@{ $r->{json} || [] }), '200 3', 'an unknown argument is let be, as SARK does');
$r = http_request('GET', '/compat/tools?server_name=postgres-mcp&server_name=github-mcp', token => $t);
is("$r->{status} @{ $r->{json}{detail}[0]{loc} }", '422 query server_name', 'an argument twice: 422');
$r = http_request('GET', '/api/v1/gateway/tools?server_name=postgres-mcp&include_tools=1', token => $t);
is("$r->{status} $r->{json}{error}{message}", '400 unknown parameter "include_tools"', 'ours: an unknown argument is 400');
my $o = main::user('outage-compat', 'admin');
stack('stop', 'opa');
my $s = http_request('GET', '/compat/servers', token => $o);
my $tl = http_request('GET', '/compat/tools?server_name=postgres-mcp', token => $o);
stack('start', 'opa');
is("$s->{status} $s->{body}", "200 []\n", 'OPA stopped: servers an empty list');
is("$tl->{status} $tl->{body}", "200 []\n", 'and tools');
ok(poll_until(15, sub { @{ http_request('GET', '/compat/servers', token => $o)->{json} || [] } == 3 }),
   'OPA back: the whole listing');
--- request
GET /compat/servers
--- error_code: 401
--- error_log
the listing answered empty (sark_api_compat sark)



=== TEST 8: OPA_FAIL_CLOSED=false fails open for low and medium questions only, and a caller cannot lower a registered sensitivity to get it
--- init
{
    local $ENV{OPA_FAIL_CLOSED} = 'false';
    stack('restart', 'sarkd');
}
my $t = main::user('failopen', 'guest');
my $ask = sub { authorize({ action => 'gateway:tool:invoke', server_name => 'postgres-mcp', @_ }, token => $t) };
poll_until(15, sub { $ask->(tool_name => 'list_tables', parameters => { warm => 1 })->{status} == 200 });
stack('stop', 'opa');
my $low = $ask->(tool_name => 'list_tables', parameters => { n => 1 });
my $crit = $ask->(tool_name => 'execute_mutation', parameters => { statement => 'x' }, sensitivity_level => 'low');
my $high = $ask->(tool_name => 'describe_table', parameters => { table => 't' }, sensitivity_level => 'medium');
stack('start', 'opa');
stack('restart', 'sarkd');
like("$low->{status} " . ($low->{json}{reason} // ''), qr/^200 fail-open: /, 'list_tables (registered low): allowed, fail-open');
is("$crit->{status} " . ($crit->{json}{error}{code} // ''), '503 OPA-001', 'execute_mutation (critical) asked as low: refused');
is("$high->{status} " . ($high->{json}{error}{code} // ''), '503 OPA-001', 'describe_table (its server: high) asked as medium: refused');
ok(poll_until(15, sub { $ask->(tool_name => 'list_tables', parameters => { n => 2 })->{status} == 200 }), 'OPA and sarkd back');
--- request
GET /api/v1/gateway/servers
--- error_code: 401
