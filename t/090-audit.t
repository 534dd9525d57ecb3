# The audit pipeline: every decision, cache hits included, is one row of
# gateway_audit_events in the real PostgreSQL, with the answer's audit_id as
# its id; the gateway audit endpoint stores its event; nothing answered is
# lost when PostgreSQL stops, when sarkd is stopped (SIGTERM) or killed
# (SIGKILL), or when nginx reloads.
#
# What can be lost: events live in the nginx worker until sarkd acknowledges
# them, and sarkd acknowledges only once they are committed or fsync'd to
# its spool.  A killed sarkd therefore loses nothing (the worker sends them
# again; ids already stored are skipped); only an nginx worker killed with
# SIGKILL (or a host crash) loses its unacknowledged events: at most the
# last sark_audit_flush (100 ms) plus the time to the acknowledgement.
#
# Rows reach PostgreSQL within the module's flush (100 ms) plus sarkd's
# AUDIT_FLUSH_INTERVAL_SECONDS (1 s); row checks wait for them (bounded),
# as do the checks after a dependency comes back (its circuit breaker
# retries every DATABASE_CIRCUIT_BREAKER_TIMEOUT, 5 s).
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request decision_is l1_ready poll_until
    pg_query pg_value audit_rows_for);
use File::Path ();
use List::Util ();
use POSIX ();
use Time::HiRes ();

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

plan tests => repeat_each() * 76;

our $N = nonce();
$ENV{TEST_NGINX_RUN_ID} = $N;
our $GW_KEY = 'sark_gw_0123456789abcdef0123456789abcdef';

# `make t` starts PostgreSQL; a suite run on its own may need it
stack('start', 'postgres');

sub user { jwt(sub => "u-$N-$_[0]", email => "$_[0]\@example.com", roles => [$_[1] // 'analyst']) }

our $QUERY = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
           . '"tool_name":"execute_query","parameters":{"query":"SELECT 1"}}';
our $DELETE = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
            . '"tool_name":"drop_table","parameters":{"table":"users"}}';

sub ready {
    l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
}

# rows_for(USER, WANT, SECS): waits until USER has WANT rows (or SECS pass)
# and returns them
sub rows_for {
    my ($who, $want, $secs) = @_;
    my @rows;
    poll_until($secs // 10, sub { @rows = audit_rows_for($who); @rows >= $want });
    Time::HiRes::sleep(0.3);    # a duplicate would arrive now
    return audit_rows_for($who);
}

# ids_are(ROWS, IDS, NAME): the rows' ids are exactly IDS (each once)
sub ids_are {
    my ($rows, $ids, $name) = @_;
    my %want = map { $_ => 1 } @$ids;
    my %count;
    $count{ $_->{id} }++ for @$rows;
    my @missing = grep { !$count{$_} } sort keys %want;
    my @extra = grep { !$want{$_} } sort keys %count;
    my @dup = grep { $count{$_} > 1 } sort keys %count;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(!@missing && !@extra && !@dup && @$rows == keys %want, $name)
        or Test::More::diag(sprintf "%d rows for %d answers; missing %d (%s), extra %d, duplicated %d",
                                    scalar @$rows, scalar keys %want, scalar @missing,
                                    join(' ', @missing[0 .. ($#missing < 2 ? $#missing : 2)]),
                                    scalar @extra, scalar @dup);
}

# load(SECS, WHO, FILE): a child process that asks the decision API the same
# question for SECS seconds, as fast as one connection allows, and writes the
# audit_id of every answered request (HTTP 200) to FILE, one per line
sub load {
    my ($secs, $who, $file) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    require HTTP::Tiny;
    my $tok = user($who);
    my $ua = HTTP::Tiny->new(timeout => 5, keep_alive => 1);
    open my $out, '>', $file or POSIX::_exit(1);
    $out->autoflush(1);
    my $end = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $end) {
        my $r = $ua->request('POST', "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/v1/gateway/authorize",
                             { headers => { Authorization => "Bearer $tok" }, content => $QUERY });
        print $out "$1\n" if $r->{status} == 200 && $r->{content} =~ /"audit_id":"([0-9a-f-]{36})"/;
    }
    close $out;
    POSIX::_exit(0);
}

sub lines_of {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    chomp(my @l = <$fh>);
    return @l;
}

# answers_without_postgres(WHO, N): WHO's question decided once (its row
# stored), then PostgreSQL stopped and the question asked N times; returns
# the audit ids of the answers (HTTP 200)
sub answers_without_postgres {
    my ($who, $n) = @_;
    ready();
    my $tok = user($who);
    authorize($QUERY, token => $tok);    # decided (MISS) with PostgreSQL up
    rows_for("u-$N-$who", 1);
    stack('stop', 'postgres');
    my @ids;
    for (1 .. $n) {
        my $r = authorize($QUERY, token => $tok);
        push @ids, $r->{json}{audit_id} if $r->{status} == 200;
    }
    return @ids;
}

# restart_under_load(WHO, STOP): four seconds of load as WHO; after 1.5 s
# STOP ends sarkd, which is started again 0.5 s later; then every answered
# request must be exactly one row (two tests)
sub restart_under_load {
    my ($who, $stop) = @_;
    ready();
    my $file = "$Tmp/$who.ids";
    my $child = load(4, $who, $file);
    Time::HiRes::sleep(1.5);
    $stop->();
    Time::HiRes::sleep(0.5);
    stack('start', 'sarkd');
    waitpid $child, 0;
    my @ids = lines_of($file);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(@ids > 50, 'the load got answers (' . scalar(@ids) . ')');
    my @rows = rows_for("u-$N-$who", scalar @ids, 30);
    ids_are(\@rows, \@ids, 'one row per answered request, none twice');
}

sub sarkd_pid { my $p = stack('pid', 'sarkd'); ($p) = $p =~ /(\d+)/; $p }

our $Run = $ENV{SARK_RUN_DIR} // "$ENV{TEST_NGINX_REPO}/run/test";
our $Spool = "$Run/spool";
our $Tmp = "$Run/audit-$N";
mkdir $Tmp;

END {
    local $?;    # the exit status of the suite, not of scripts/stack
    # leave the stack as `make t` started it
    eval { stack('start', 'postgres', 'sarkd') };
    File::Path::remove_tree($Tmp);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config())
        unless defined $block->http_config;
    $block->set_value(config => <<"_EOC_") unless defined $block->config;
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/gateway/audit {
        sark_api audit;
        sark_gateway_key $GW_KEY;
    }
    location ~ ^/mcp/(?<srv>[a-z-]+)/(?<tool>[a-z_]+)\$ {
        sark_authz         on;
        sark_authz_action  gateway:tool:invoke;
        sark_authz_server  \$srv;
        sark_authz_tool    \$tool;
        add_header X-Sark-Audit \$sark_audit_id always;
        empty_gif;
    }
_EOC_
    # most blocks end with one enforced call by the "schema" user
    $block->set_value(request => "GET /mcp/github-mcp/get_repo")
        unless defined $block->request;
    $block->set_value(more_headers => "Authorization: Bearer " . user('schema', 'developer'))
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: sarkd applied the schema: migrations, monthly partitions (this month and the next), indexes, summary view
--- init
my @m = pg_query('SELECT version FROM sark_schema_migrations ORDER BY version');
ok(@m >= 1 && $m[0][0] == 1, 'migrations are recorded in sark_schema_migrations');
is(pg_value(q{SELECT partstrat FROM pg_partitioned_table
              WHERE partrelid = 'gateway_audit_events'::regclass}), 'r',
   'gateway_audit_events is range-partitioned');
my %parts = map { $_->[0] => 1 } pg_query(q{SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'gateway_audit_events'::regclass});
my @t = gmtime;
my $this = sprintf 'gateway_audit_events_%04d_%02d', $t[5] + 1900, $t[4] + 1;
my ($ny, $nm) = $t[4] == 11 ? ($t[5] + 1901, 1) : ($t[5] + 1900, $t[4] + 2);
my $next = sprintf 'gateway_audit_events_%04d_%02d', $ny, $nm;
ok($parts{$this}, "partition $this exists");
ok($parts{$next}, "partition $next exists");
my $idx = join "\n", map { $_->[0] } pg_query(q{SELECT indexdef FROM pg_indexes
    WHERE tablename = 'gateway_audit_events'});
like($idx, qr/\(user_id, "timestamp" DESC, id DESC\)/, 'index on user_id (in the order of audit pages)');
like($idx, qr/\("timestamp" DESC, id DESC\)/, 'index on timestamp DESC (then id)');
like($idx, qr/\(event_type\)/, 'index on event_type');
like($idx, qr/\(server_name, "timestamp" DESC, id DESC\)/, 'index on server_name (in the order of audit pages)');
like($idx, qr/USING gin \(metadata\)/, 'GIN index on metadata');
is(pg_value(q{SELECT count(*) FROM pg_matviews WHERE matviewname = 'gateway_audit_hourly'}), 1,
   'the hourly summary view exists');
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: N decisions (allow and deny, misses and L1 hits) are exactly N rows whose ids are the answers' audit_ids
--- init
main::ready();
my $tok = main::user('api');
my (@ids, @answers, %rid);
my $i = 0;
for my $body (($main::QUERY) x 4, ($main::DELETE) x 3) {
    my $r = authorize($body, token => $tok, headers => { 'X-Request-Id' => "rq-$main::N-" . ++$i });
    push @answers, $r->{json};
    next unless ref $r->{json} eq 'HASH';
    push @ids, $r->{json}{audit_id};
    $rid{ $r->{json}{audit_id} } = "rq-$main::N-$i";
}
is(scalar(grep { defined } @ids), 7, 'seven answers, each with an audit_id');
my %by_id = map { $_->{audit_id} => $_ } @answers;
my @rows = main::rows_for("u-$main::N-api", 7);
main::ids_are(\@rows, \@ids, 'exactly seven rows, one per answer');
my @bad;
for my $row (@rows) {
    my $a = $by_id{ $row->{id} } or next;
    my $want_decision = $a->{allow} ? 'allow' : 'deny';
    push @bad, "$row->{id}: decision $row->{decision}" if $row->{decision} ne $want_decision;
    push @bad, "$row->{id}: cache $row->{cache_layer}" if $row->{cache_layer} ne $a->{metadata}{cache};
    push @bad, "$row->{id}: reason" if $row->{reason} ne $a->{reason};
    push @bad, "$row->{id}: revision" if ($row->{policy_revision} // '') ne $a->{metadata}{policy_revision};
    push @bad, "$row->{id}: action" if $row->{action} ne 'gateway:tool:invoke';
    push @bad, "$row->{id}: server" if $row->{server_name} ne 'postgres-mcp';
    push @bad, "$row->{id}: client ip" if $row->{client_ip} ne '127.0.0.1';
    push @bad, "$row->{id}: event type" if $row->{event_type} ne 'authorization';
    push @bad, "$row->{id}: request id" if $row->{gateway_request_id} ne ($rid{ $row->{id} } // '');
    push @bad, "$row->{id}: latency" if !defined $row->{latency_us} || $row->{latency_us} < 0;
    push @bad, "$row->{id}: timestamp" if abs($row->{timestamp} - time) > 60;
}
ok(!@bad, 'every row carries the fields of its answer') or diag(join "\n", @bad);
my %tools;
$tools{"$_->{tool_name}:$_->{decision}:$_->{cache_layer}"}++ for @rows;
is(join(' ', map { "$_=$tools{$_}" } sort keys %tools),
   'drop_table:deny:L1=2 drop_table:deny:MISS=1 execute_query:allow:L1=3 execute_query:allow:MISS=1',
   'cache hits are recorded as L1, first answers as MISS');
# the request id a gateway names in gateway_metadata comes before the header
my $gw = authorize('{"action":"gateway:server:list","gateway_metadata":{"request_id":"gw-' . $main::N . '"}}',
                   token => main::user('gw-rid'), headers => { 'X-Request-Id' => 'header-id' });
my ($gw_row) = main::rows_for("u-$main::N-gw-rid", 1);
is($gw_row && $gw_row->{gateway_request_id}, "gw-$main::N",
   'gateway_metadata.request_id is the row\'s gateway_request_id');
--- request eval
"POST /api/v1/gateway/authorize\n$main::QUERY"
--- more_headers eval
"Authorization: Bearer " . main::user('api')
--- error_code: 200
--- response_body_like: "cache":"L1"
--- no_error_log
[error]



=== TEST 3: an enforced location: $sark_audit_id is the row's id, for an allow and a deny
--- init
main::ready();
my $tok = main::user('enforce', 'developer');
my @ids;
for my $path ('/mcp/github-mcp/get_repo', '/mcp/github-mcp/get_repo', '/mcp/github-mcp/delete_repo') {
    my $r = http_request('GET', $path, token => $tok);
    push @ids, $r->{headers}{'x-sark-audit'};
}
is(scalar(grep { /^[0-9a-f-]{36}$/ } @ids), 3, 'three answers carry X-Sark-Audit');
my @rows = main::rows_for("u-$main::N-enforce", 3);
main::ids_are(\@rows, \@ids, 'three rows with those ids');
is(join(' ', map { "$_->{tool_name}:$_->{decision}:$_->{cache_layer}" } @rows),
   'get_repo:allow:MISS get_repo:allow:L1 delete_repo:deny:MISS',
   'each row says what was decided and where from');
--- request
GET /mcp/github-mcp/get_repo
--- more_headers eval
"Authorization: Bearer " . main::user('enforce', 'developer')
--- error_code: 200
--- no_error_log
[error]



=== TEST 4: POST /api/v1/gateway/audit stores the event and answers 201 with its id
--- request eval
"POST /api/v1/gateway/audit
{\"event_type\":\"tool_invoke\",\"user_id\":\"u-$main::N-gw\",\"agent_id\":\"agent-7\","
. "\"server_name\":\"github-mcp\",\"tool_name\":\"get_repo\",\"decision\":\"allow\","
. "\"reason\":\"ok by gateway\",\"timestamp\":" . time() . ",\"gateway_request_id\":\"gw-$main::N\","
. "\"metadata\":{\"trace\":\"t-1\",\"n\":2}}"
--- more_headers eval
"X-Gateway-Api-Key: $main::GW_KEY"
--- error_code: 201
--- response_body_like: ^\{"audit_id":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}","status":"logged"\}$
--- no_error_log
[error]



=== TEST 5: the event of TEST 4 is in the table at once (201 means durable), with every field
--- init
my @rows = audit_rows_for("u-$main::N-gw");
is(scalar @rows, 1, 'one row for the gateway event');
my $r = $rows[0] // {};
is(join('|', map { $r->{$_} // 'NULL' } qw(event_type agent_id server_name tool_name decision reason gateway_request_id)),
   "tool_invoke|agent-7|github-mcp|get_repo|allow|ok by gateway|gw-$main::N", 'its fields');
is(pg_value(qq{SELECT metadata->>'trace' FROM gateway_audit_events WHERE user_id = 'u-$main::N-gw'}),
   't-1', 'metadata is stored as jsonb');
--- request
POST /api/v1/gateway/audit
{"event_type":"x","decision":"allow","reason":"r","timestamp":1,"gateway_request_id":"g"}
--- more_headers
X-Gateway-Api-Key: wrong
--- error_code: 401
--- response_body_like: ^\{"error":\{"code":"AU-
--- no_error_log
[error]



=== TEST 6: the gateway audit endpoint refuses a body without its required fields (400)
--- request
POST /api/v1/gateway/audit
{"event_type":"tool_invoke","decision":"allow","timestamp":"yesterday","gateway_request_id":"g","reason":"r"}
--- more_headers eval
"X-Gateway-Api-Key: $main::GW_KEY"
--- error_code: 400
--- response_body_like: timestamp
--- no_error_log
[error]



=== TEST 7: the by-user, last-24-hours query uses an index; the hourly summary refreshes concurrently
# The 20,000 rows made here are removed again, so that the test database
# does not grow from run to run (TEST 14 times a refresh of the summary).
--- init
pg_query(q{DELETE FROM gateway_audit_events WHERE user_id LIKE 'bulk-%'});
pg_query(q{INSERT INTO gateway_audit_events (id, event_type, user_id, decision, reason, "timestamp")
           SELECT gen_random_uuid(), 'authorization', 'bulk-' || (g % 500), 'allow', '',
                  now() - (g || ' seconds')::interval
           FROM generate_series(1, 20000) g});
pg_query('ANALYZE gateway_audit_events');
my $plan = join "\n", map { $_->[0] } pg_query(q{EXPLAIN SELECT * FROM gateway_audit_events
    WHERE user_id = 'bulk-7' AND "timestamp" > now() - interval '24 hours'});
like($plan, qr/Index|Bitmap/, 'EXPLAIN shows an index scan') or diag($plan);
pg_query('REFRESH MATERIALIZED VIEW CONCURRENTLY gateway_audit_hourly');
ok(pg_value(q{SELECT sum(events) FROM gateway_audit_hourly}) >= 20000,
   'the summary counts the events');
pg_query(q{DELETE FROM gateway_audit_events WHERE user_id LIKE 'bulk-%'});
--- error_code: 200
--- no_error_log
[error]



=== TEST 8: PostgreSQL stopped: requests are answered; once it is back, every one of them is a row, once
--- init
my @ids = main::answers_without_postgres('pgdown', 30);
is(scalar @ids, 30, 'thirty answers with PostgreSQL down');
ok(poll_until(5, sub { my @f = glob("$main::Spool/spool-*.log"); @f && -s $f[0] }),
   'sarkd keeps them in its spool meanwhile');
stack('start', 'postgres');
my @rows = main::rows_for("u-$main::N-pgdown", 31, 30);
shift @rows;
main::ids_are(\@rows, \@ids, 'the thirty events are rows once PostgreSQL is back');
--- error_code: 200
--- no_error_log
[error]



=== TEST 9: sarkd stopped (SIGTERM) and started again under load: rows = answered requests
--- init
main::restart_under_load('term', sub { stack('stop', 'sarkd') });
--- error_code: 200



=== TEST 10: sarkd killed (SIGKILL) under load: the worker sends the unacknowledged events again; rows = answered requests
--- init
main::restart_under_load('kill', sub { kill 'KILL', main::sarkd_pid() });
--- error_code: 200



=== TEST 11: events spooled while PostgreSQL was down survive sarkd being killed and are replayed by the next sarkd
--- init
my @ids = main::answers_without_postgres('spool', 20);
# acknowledged = in the spool: the module's flush, then sarkd's
Time::HiRes::sleep(2);
kill 'KILL', main::sarkd_pid();
stack('start', 'postgres');
stack('start', 'sarkd');
my @rows = main::rows_for("u-$main::N-spool", 21, 30);
shift @rows;
main::ids_are(\@rows, \@ids, 'the twenty spooled events are rows');
--- error_code: 200



=== TEST 12: nginx reload: events of the old workers are not lost
--- init
main::ready();
my $tok = main::user('reload');
my @ids;
for (1 .. 10) {
    my $r = authorize($main::QUERY, token => $tok);
    push @ids, $r->{json}{audit_id} if $r->{status} == 200;
}
(my $prefix = Test::Sark::html_dir()) =~ s{/html$}{};
open my $fh, '<', "$prefix/logs/nginx.pid" or die "nginx.pid: $!";
my ($master) = <$fh> =~ /(\d+)/;
kill 'HUP', $master;
my @rows = main::rows_for("u-$main::N-reload", 10, 15);
main::ids_are(\@rows, \@ids, 'the ten events are rows');
--- error_code: 200



=== TEST 13: a batch sarkd does not acknowledge within sark_audit_ack_timeout is sent again; its events become rows once
--- http_config eval
main::sark_http_config('sark_audit_ack_timeout 1s')
--- init
main::ready();
my $tok = main::user('ack');
authorize($main::QUERY, token => $tok);    # decided by sarkd, then cached
main::rows_for("u-$main::N-ack", 1);
stack('pause', 'sarkd');
my @ids;
for (1 .. 3) {
    my $r = authorize($main::QUERY, token => $tok);
    push @ids, $r->{json}{audit_id} if $r->{status} == 200;
}
is(scalar @ids, 3, 'three answers from L1 while sarkd is stalled');
Time::HiRes::sleep(2.5);
stack('resume', 'sarkd');
my @rows = main::rows_for("u-$main::N-ack", 4, 15);
shift @rows;
main::ids_are(\@rows, \@ids, 'the three events are rows, each once');
--- error_code: 200
--- error_log eval
qr/no acknowledgement for an audit batch of \d+ events; it will be sent again/



=== TEST 14: the hourly summary is refreshed on its own; a slow refresh puts the next one off by four times its duration, with a warning, instead of starting it at once
--- init
my $log = "$main::Run/sarkd.log";
my $mark = "refresh-$main::N";
my $seen = () = main::lines_of($log);
{
    local $ENV{AUDIT_SUMMARY_REFRESH_SECONDS} = 1;
    local $ENV{LOG_LEVEL} = 'debug';
    stack('restart', 'sarkd');
}
my $since = sub { my @l = main::lines_of($log); @l[$seen .. $#l] };
my $refreshes = sub { scalar grep { /"msg":"audit hourly view refreshed"/ } $since->() };

pg_query(qq{INSERT INTO gateway_audit_events (id, event_type, decision, server_name, "timestamp")
            VALUES (gen_random_uuid(), 'authorization', 'allow', '$mark', now())});
ok(poll_until(10, sub { pg_value(qq{SELECT count(*) FROM gateway_audit_hourly WHERE server_name = '$mark'}) == 1 }),
   'the new event is in the summary without a manual refresh');

# the refresh reads the events: while they are locked, the next refresh
# waits (and so would writes, of which there are none meanwhile).  Right
# after a refresh ends, the next one is due in 1 s, or in four times its
# duration when it took more than a quarter of that (the growing test
# table can make it so): the lock is taken then and held 2 s past that.
my $ended = $refreshes->();
my $last;
poll_until(10, sub {
    return 0 unless $refreshes->() > $ended;
    ($last) = (grep { /"msg":"audit hourly view refreshed"/ } $since->())[-1];
    1;
});
my ($took) = ($last // '') =~ /"ms":(\d+)/;
my $hold = (List::Util::max(1000, 4 * ($took // 0)) + 2000) / 1000;
my $locked_at = () = main::lines_of($log);
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    eval { pg_query("BEGIN; LOCK TABLE gateway_audit_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($hold); COMMIT") };
    print STDERR $@ if $@;
    POSIX::_exit($@ ? 1 : 0);
}
# (a refresh of the growing test table may be "slow" for a 1 s interval
# too: the one that waited for the lock took 2 s or more)
my $slow;
poll_until($hold + 10, sub {
    my @l = main::lines_of($log);
    ($slow) = grep { /audit hourly view refresh is slow/ && /"ms":(\d+)/ && $1 >= 1000 } @l[$locked_at .. $#l];
    $slow;
});
waitpid $pid, 0;
is($?, 0, "the events were locked for $hold s");
ok($slow, 'a warning says the refresh was slow');
my ($ms) = ($slow // '') =~ /"ms":(\d+)/;
my ($next) = ($slow // '') =~ /"next_in_ms":(\d+)/;
$ms //= 0;
$next //= 0;
ok($ms >= 1000 && $next >= 4 * $ms, "the next refresh is put off by four times the slow one ($ms ms -> $next ms)");
my $before = $refreshes->();
Time::HiRes::sleep(3);
is($refreshes->(), $before, 'no refresh starts in the 3 s after it, with AUDIT_SUMMARY_REFRESH_SECONDS=1');
ok(poll_until($next / 1000 + 5, sub { $refreshes->() > $before }), 'refreshes go on afterwards');

stack('restart', 'sarkd');
--- error_code: 200



=== TEST 14: nginx reload while sarkd is down, under load: the old workers keep their events (sark_audit_exit_wait) until sarkd is back; rows = answered requests
--- init
main::ready();
my $file = "$main::Tmp/reload-down.ids";
my $child = main::load(9, 'reload-down', $file);
Time::HiRes::sleep(1);       # decided and cached while sarkd is up
stack('stop', 'sarkd');
Time::HiRes::sleep(1);       # answered from L1, held by the workers
(my $prefix = Test::Sark::html_dir()) =~ s{/html$}{};
open my $fh, '<', "$prefix/logs/nginx.pid" or die "nginx.pid: $!";
my ($master) = <$fh> =~ /(\d+)/;
kill 'HUP', $master;
Time::HiRes::sleep(6);       # past the old wait of 5 s
stack('start', 'sarkd');
waitpid $child, 0;
my @ids = main::lines_of($file);
ok(@ids > 50, 'the load got answers through the reload (' . scalar(@ids) . ')');
my @rows = main::rows_for("u-$main::N-reload-down", scalar @ids, 40);
main::ids_are(\@rows, \@ids, 'one row per answered request, none twice');
--- error_code: 200
--- no_error_log
are lost



=== TEST 15: nginx reload while PostgreSQL is paused: sarkd spools what it cannot write in time and acknowledges it; the old workers wait for that; nothing is lost and no loss is reported
--- init
main::ready();
my $tok = main::user('reload-pgpause');
authorize($main::QUERY, token => $tok);
main::rows_for("u-$main::N-reload-pgpause", 1);
stack('pause', 'postgres');
my @ids;
for (1 .. 10) {
    my $r = authorize($main::QUERY, token => $tok);
    push @ids, $r->{json}{audit_id} if $r->{status} == 200;
}
is(scalar @ids, 10, 'ten answers from L1 while PostgreSQL is paused');
(my $prefix = Test::Sark::html_dir()) =~ s{/html$}{};
open my $fh, '<', "$prefix/logs/nginx.pid" or die "nginx.pid: $!";
my ($master) = <$fh> =~ /(\d+)/;
kill 'HUP', $master;
Time::HiRes::sleep(8);       # past DATABASE_STATEMENT_TIMEOUT: spooled, acknowledged
stack('resume', 'postgres');
my @rows = main::rows_for("u-$main::N-reload-pgpause", 11, 40);
shift @rows;
main::ids_are(\@rows, \@ids, 'the ten events are rows');
--- error_code: 200
--- no_error_log eval
[qr/are lost/, qr/not confirmed/]
