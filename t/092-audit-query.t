# Audit queries (GET /api/v1/audit/events, sark_api audit_events): admins
# and auditors only; filters by user, server, tool, decision and time;
# keyset pages (newest first) whose cursors cannot be forged; read from
# DATABASE_READ_URL when set; and every filter served by an index, shown
# by EXPLAIN on a million rows made by generate_series.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request poll_until pg_query pg_value);

repeat_each(1);
no_shuffle();

plan tests => 75;

our $N = nonce();
our $U = "aq-$N";

sub tok { jwt(sub => "aq-reader-$_[0]", roles => [$_[0]]) }

sub events {
    my ($query, $role) = @_;
    return http_request('GET', "/api/v1/audit/events?$query", token => tok($role // 'auditor'));
}

sub ids { join ' ', map { $_->{gateway_request_id} } @{ $_[0]{json}{events} || [] } }

# 25 rows of one user, a second apart (newest: r25), alternating decisions,
# two servers and tools
sub seed {
    pg_query(qq{INSERT INTO gateway_audit_events (id, event_type, user_id, server_name, tool_name,
        decision, reason, gateway_request_id, "timestamp")
      SELECT gen_random_uuid(), 'authorization', '$main::U',
             CASE WHEN i % 5 = 0 THEN 'github-mcp' ELSE 'postgres-mcp' END,
             CASE WHEN i % 5 = 0 THEN 'get_repo' ELSE 'list_tables' END,
             CASE WHEN i % 2 = 0 THEN 'deny' ELSE 'allow' END, 'seeded', 'r' || i,
             timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second'
        FROM generate_series(1, 25) i});
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/audit/events { sark_api audit_events; }
    location = /api/v1/gateway/authorize { sark_api authorize; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: admins and auditors only
--- init
main::seed();
my $r = http_request('GET', "/api/v1/audit/events?user_id=$main::U");
is("$r->{status} $r->{json}{error}{code}", '401 AU-001', 'no token: 401');
$r = main::events("user_id=$main::U", 'analyst');
is("$r->{status} $r->{json}{error}{code}", '403 AZ-002', 'an analyst: 403');
like($r->{json}{error}{message}, qr/admin and auditor/, 'says who may');
is(main::events("user_id=$main::U", 'admin')->{status}, 200, 'an admin: 200');
$r = main::events("user_id=$main::U&limit=3", 'auditor');
is($r->{status}, 200, 'an auditor: 200');
is(main::ids($r), 'r25 r24 r23', 'newest first');
my $e = $r->{json}{events}[0];
is_deeply([sort keys %$e], [sort qw(id timestamp event_type user_id agent_id server_name tool_name action
    sensitivity_level decision reason cache_layer latency_us policy_revision gateway_request_id client_ip metadata)],
    'every column');
is($e->{timestamp}, '2026-11-01T00:00:25.000000Z', 'the timestamp, UTC, microseconds');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 2: keyset pages: every row once, in order; the last page has no cursor; an empty page
--- init
my ($seen, $cursor, $pages) = ('', undef, 0);
do {
    my $r = main::events("user_id=$main::U&limit=10" . (defined $cursor ? "&cursor=$cursor" : ''));
    is($r->{status}, 200, "page " . ($pages + 1) . ": 200");
    $seen .= ' ' . main::ids($r);
    $cursor = $r->{json}{next_cursor};
    $pages++;
} while (defined $cursor && $pages < 5);
is($pages, 3, 'three pages of 10, 10 and 5');
is($seen, ' ' . join(' ', map { "r$_" } reverse 1 .. 25), 'every row once, newest first');
my $r = main::events("user_id=$main::U&limit=25");
ok(!defined $r->{json}{next_cursor}, 'exactly a page: no cursor');
$r = main::events("user_id=nobody-$main::N");
is($r->{body}, qq({"events":[],"next_cursor":null}\n), 'no row: an empty page');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 3: filters: decision, server, tool, since, until, together
--- init
is(main::ids(main::events("user_id=$main::U&decision=deny&limit=3")), 'r24 r22 r20', 'decision=deny');
is(main::ids(main::events("user_id=$main::U&server_name=github-mcp")), 'r25 r20 r15 r10 r5', 'server_name');
is(main::ids(main::events("user_id=$main::U&tool_name=get_repo&decision=allow")), 'r25 r15 r5', 'tool and decision');
is(main::ids(main::events("user_id=$main::U&since=2026-11-01T00:00:22Z")), 'r25 r24 r23 r22', 'since (inclusive)');
is(main::ids(main::events("user_id=$main::U&until=2026-11-01T00:00:03Z")), 'r2 r1', 'until (exclusive)');
is(main::events("user_id=$main::U&until=2028-02-29T00:00:00Z&since=2026-12-31T23:59:59Z")->{status}, 200,
   'leap day and the last day of December are dates');
my $t = 1793491200 + 10;   # 2026-11-01T00:00:10Z
is(main::ids(main::events("user_id=$main::U&since=$t&until=" . ($t + 2))), 'r11 r10', 'Unix seconds');
is(main::ids(main::events("user_id=$main::U&since=2026-11-01T00:00:10.500000Z&until=2026-11-01T00:00:12Z")), 'r11',
   'fractions of a second');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 4: bad parameters and forged cursors are 400, never a query
--- init
my $r = main::events("user_id=$main::U&limit=2");
my $c = $r->{json}{next_cursor};
like($c, qr/^\d+\.[0-9a-f-]{36}\.[0-9a-f]{32}$/, 'a cursor: microseconds, id, tag');
(my $moved = $c) =~ s/^(\d+)/$1 + 1000000/e;
(my $other_id = $c) =~ s/\.([0-9a-f])/'.' . ($1 eq 'a' ? 'b' : 'a')/e;
my @bad = (
    ['limit=0', 'parameter "limit" must be 1 to 1000'],
    ['limit=1001', 'parameter "limit" must be 1 to 1000'],
    ['limit=ten', 'parameter "limit" must be 1 to 1000'],
    ['decision=maybe', 'parameter "decision" is invalid'],
    ['since=yesterday', 'parameter "since" must be Unix seconds or an RFC 3339'],
    ['until=2026-13-01T00:00:00Z', 'parameter "until" must be Unix seconds'],
    ['until=2026-02-29T00:00:00Z', 'parameter "until" must be Unix seconds'],
    ['until=2026-04-31T00:00:00Z', 'parameter "until" must be Unix seconds'],
    ['user_id=a%00b', 'parameter "user_id" is invalid'],
    ['user_id=', 'parameter "user_id" is invalid'],
    ['server_name=' . ('x' x 257), 'parameter "server_name" is invalid'],
    ['user_id=%ff', 'parameter "user_id" is invalid'],
    ['tool_name=%ED%A0%80', 'parameter "tool_name" is invalid'],
    ['user_id=a&user_id=b', 'parameter "user_id" is given more than once'],
    ['usr=x', 'unknown parameter "usr"'],
    ['USER_ID=x', 'unknown parameter "USER_ID"'],
    ['user%5Fid=x', 'parameter name "user%5Fid" is %-encoded'],
    ['explain=true', 'parameter "explain" is invalid'],
    ['cursor=', 'parameter "cursor" is invalid'],
    ['decision', 'parameter "decision" is invalid'],
    ['user_id=a%zzb', 'parameter "user_id" is invalid'],
    ['user_id=ab%4', 'parameter "user_id" is invalid'],
    ["cursor=$moved", 'invalid cursor'],
    ["cursor=$other_id", 'invalid cursor'],
    ['cursor=' . substr($c, 0, -1) . 'g', 'invalid cursor'],
    ["cursor=1.x'%3B%20DROP%20TABLE%20gateway_audit_events%3B--.00", 'invalid cursor'],
    ['cursor=garbage', 'invalid cursor'],
);
for my $b (@bad) {
    my ($q, $msg) = @$b;
    $r = main::events($q =~ /^user_id=/ ? $q : "user_id=$main::U&$q");
    ok($r->{status} == 400 && ($r->{json}{error}{message} // '') =~ /^\Q$msg\E/, "$q: 400, $msg")
        or diag("$r->{status} " . substr($r->{body}, 0, 200));
}
is(pg_value("SELECT count(*) FROM gateway_audit_events WHERE user_id = '$main::U'"), 25, 'the table is intact');
$r = main::events('user_id=' . ('x' x 300));
is("$r->{status} " . scalar(@{ $r->{json}{events} || [1] }), '200 0', 'a user id as long as a token\'s sub may be: a filter');
is($r->{headers}{'cache-control'} // '', 'no-store', 'Cache-Control: no-store (an answer for one caller)');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 5: a decision becomes a row the query finds
--- init
my $tok = jwt(sub => "$main::U-live", roles => ['analyst']);
my $a = authorize('{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}', token => $tok);
my $r;
poll_until(10, sub { $r = main::events("user_id=$main::U-live"); @{ $r->{json}{events} || [] } });
is($r->{json}{events}[0]{id}, $a->{json}{audit_id}, 'the answer\'s audit_id is the row\'s id');
is($r->{json}{events}[0]{decision}, 'allow', 'its decision');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 6: every filter uses an index: EXPLAIN on a million rows
--- timeout: 120
--- init
pg_query(q{INSERT INTO gateway_audit_events (id, event_type, user_id, server_name, tool_name, decision,
    reason, gateway_request_id, "timestamp")
  SELECT gen_random_uuid(), 'authorization', 'explain-u' || (i % 5000), 'explain-s' || (i % 50),
         'explain-t' || (i % 200), CASE WHEN i % 2 = 0 THEN 'deny' ELSE 'allow' END, '', 'x',
         timestamptz '2001-01-01 00:00:00+00' + i * interval '1 second'
    FROM generate_series(1, 1000000) i});
pg_query('ANALYZE gateway_audit_events');
my @cases = (
    ['user_id=explain-u42', 'ix_gateway_audit_user_keyset'],
    ['server_name=explain-s7', 'ix_gateway_audit_server_keyset'],
    ['tool_name=explain-t9', 'ix_gateway_audit_tool_keyset'],
    # half the rows match: the planner may as well read the time index
    ['decision=deny', 'ix_gateway_audit_decision_keyset', 'ix_gateway_audit_keyset'],
    ['since=2001-01-05T00:00:00Z&until=2001-01-06T00:00:00Z', 'ix_gateway_audit_keyset'],
    ['', 'ix_gateway_audit_keyset'],
);
for my $c (@cases) {
    my ($q, @indexes) = @$c;
    # the indexes' copies on the partition that holds the million rows
    my @children = map { pg_value(qq{SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_index x ON x.indexrelid = c.oid
        WHERE p.relname = '$_' AND x.indrelid = 'gateway_audit_events_default'::regclass}) } @indexes;
    my $r = main::events("$q&explain=1", 'admin');
    my $plan = $r->{json}{plan} // '';
    ok($r->{status} == 200 && (grep { $_ && $plan =~ /Index Scan using \Q$_\E on gateway_audit_events_default/ } @children)
       && $plan !~ /Seq Scan|Sort  \(/, "'$q': $indexes[0], no sequential scan, no sort")
        or diag("@children\n$plan");
}
my $r = main::events('user_id=explain-u42&limit=3', 'admin');
is(scalar(@{ $r->{json}{events} || [] }), 3, 'and the query itself answers');
# the default partition holds only what tests put out of every month
pg_query('TRUNCATE gateway_audit_events_default');
--- request
POST /api/v1/audit/events
--- error_code: 405



=== TEST 7: DATABASE_READ_URL is where queries read: away, they are 503 while decisions go on
--- init
$ENV{DATABASE_READ_URL} = 'postgresql://postgres@127.0.0.1:1/sark';
stack('restart', 'sarkd');
my $r;
poll_until(10, sub { $r = main::events("user_id=$main::U"); $r->{status} == 503 });
is("$r->{status} $r->{json}{error}{code}", '503 DB-001', 'the read database away: 503 DB-001');
like($r->{json}{error}{message}, qr/not reachable/, 'says so');
ok($r->{headers}{'retry-after'}, 'Retry-After');
my $a = authorize('{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}',
                  token => jwt(sub => "$main::U-d", roles => ['analyst']));
is($a->{status}, 200, 'decisions are not affected');
delete $ENV{DATABASE_READ_URL};
stack('restart', 'sarkd');
ok(poll_until(10, sub { main::events("user_id=$main::U")->{status} == 200 }), 'back on DATABASE_URL');
--- request
POST /api/v1/audit/events
--- error_code: 405
