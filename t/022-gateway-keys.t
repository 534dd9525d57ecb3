# Gateway callers with keys from `sarkd keys` (PostgreSQL, hashed): a key
# acts as the body's user on the decision API and records events on the
# audit endpoint, within its scopes and expiry; a revoked key stops working
# within a second (Redis pub/sub), even for decisions in L1; the workers
# never ask the database (sarkd pushes the key set), and forget it when
# sarkd is gone.  Every decision is audited with the key's id.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request poll_until audit_rows_for pg_value
    redis_cli redis_publish);
use Time::HiRes ();
use Digest::SHA ();

repeat_each(1);
no_shuffle();

plan tests => 86;

our $N = nonce();

# keys(ARGS...): `sarkd keys ARGS` with the stack's settings; (status,
# stdout, stderr)
sub keys_cmd {
    my @args = @_;
    my $err = "$ENV{SARK_RUN_DIR}/keys-$$.err";
    my $out = qx{$ENV{TEST_NGINX_REPO}/scripts/stack keys @args 2>$err};
    my $rc = $? >> 8;
    open my $fh, '<', $err; local $/; my $e = <$fh> // ''; close $fh; unlink $err;
    return ($rc, $out, $e);
}

sub new_key {
    my ($name, @more) = @_;
    my ($rc, $out, $err) = keys_cmd('create', '--name', "$name-$main::N", @more);
    die "sarkd keys create: $rc $err" if $rc;
    chomp $out;
    return $out;
}

sub ask {
    my ($key, $user, %opt) = @_;
    my $body = { action => 'gateway:tool:invoke', server_name => 'postgres-mcp',
                 tool_name => 'list_tables', %{ $opt{body} || {} } };
    $body->{user} = $user if defined $user;
    my %h = defined $key ? ('X-Gateway-Api-Key' => $key) : ();
    %h = (Authorization => "Bearer $key") if $opt{bearer};
    return authorize($body, headers => \%h, path => $opt{path} // '/api/v1/gateway/authorize');
}

# waits until the workers know `key` (the push follows the database)
sub known {
    my ($key) = @_;
    my $r;
    poll_until(10, sub { $r = ask($key, { id => 'probe' }); $r->{status} == 200 });
    return $r->{status} == 200;
}

sub analyst { { id => "ana-$main::N-$_[0]", email => 'ana@example.com', roles => ['analyst'], teams => ['data'] } }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/gateway/audit { sark_api audit; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: sarkd keys create prints the key once and stores only its SHA-256; list shows it
--- init
my ($rc, $out, $err) = main::keys_cmd('create', '--name', "k1-$main::N");
is($rc, 0, 'create: exit 0') or diag($err);
like($out, qr/^sark_gw_[0-9a-f]{32}\n$/, 'create: the key alone on stdout');
like($err, qr/created gateway key (gk_[0-9a-f]{12}) \(name "k1-\Q$main::N\E", scopes authorize,audit, expires never\)/,
     'create: what was made, on stderr');
chomp $out;
$main::K1 = $out;
my $sha = Digest::SHA::sha256_hex($out);
is(pg_value("SELECT encode(key_hash, 'hex') FROM gateway_keys WHERE name = 'k1-$main::N'"), $sha,
   'the table holds the SHA-256');
is(pg_value("SELECT count(*) FROM gateway_keys WHERE key_hash::text LIKE '%" . substr($out, 8, 16) . "%'"), 0,
   'and nothing of the key itself');
($rc, $out) = main::keys_cmd('list');
like($out, qr/^gk_[0-9a-f]{12}\tk1-\Q$main::N\E\tauthorize,audit\t\S+Z\t-\t-\tactive$/m, 'list: id, name, scopes, dates, active');
($rc, undef, $err) = main::keys_cmd('create', '--name', "k1-$main::N");
is($rc, 1, 'create: a second active key of one name is refused');
like($err, qr/exists and is not revoked/, 'with a message');
($rc, undef, $err) = main::keys_cmd('create', '--name', 'x', '--scopes', 'everything');
is($rc, 2, 'create: unknown scope is a usage error');
($rc, undef, $err) = main::keys_cmd('create', '--name', "'tab\there'");
is("$rc " . ($err =~ /no control characters/ ? 'says' : $err), '2 says', 'create: a name with a control character (a column of list) is a usage error');
--- request
GET /api/v1/gateway/authorize
--- error_code: 405



=== TEST 2: a key acts as the body's user, by header or bearer; the row names the user and the key
--- init
ok(main::known($main::K1), 'the workers learn the new key');
my $u = main::analyst('t2');
my $r = main::ask($main::K1, $u);
is($r->{status}, 200, 'X-Gateway-Api-Key: 200');
ok($r->{json}{allow}, 'the analyst may list tables') or diag($r->{body});
$r = main::ask($main::K1, { %$u, roles => ['developer'] }, bearer => 1);
ok($r->{status} == 200 && !$r->{json}{allow}, 'Bearer sark_gw_...: a developer is denied');
my @rows;
poll_until(10, sub { @rows = audit_rows_for($u->{id}); @rows >= 2 });
is(scalar(@rows), 2, 'both decisions audited under the body user');
my $kid = pg_value("SELECT id FROM gateway_keys WHERE name = 'k1-$main::N'");
like($rows[0]{metadata} // '', qr/"gateway_key": "\Q$kid\E"/, 'the row names the key');
is(join(' ', map { $_->{decision} } @rows), 'allow deny', 'allow then deny');
ok(poll_until(10, sub { pg_value("SELECT last_used_at IS NOT NULL FROM gateway_keys WHERE id = '$kid'") eq 't' }),
   'the key\'s last_used_at is written');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 3: a gateway must name a valid user: missing, wrong types, too many roles are 400
--- init
my @cases = (
    ['no user', undef, 'missing required field "user"'],
    ['user not an object', 'alice', 'field "user" must be an object'],
    ['no id', { roles => ['admin'] }, 'missing required field "id"'],
    ['empty id', { id => '' }, 'field "id" must not be empty'],
    ['roles a string', { id => 'a', roles => 'admin' }, 'field "user.roles" must be an array of strings'],
    ['a role not a string', { id => 'a', roles => [1] }, 'field "user.roles" must hold strings'],
    ['65 teams', { id => 'a', teams => [map { "t$_" } 1 .. 65] }, 'field "user.teams" has more than 64 entries'],
);
for my $c (@cases) {
    my ($what, $user, $msg) = @$c;
    my $r = main::ask($main::K1, $user);
    is($r->{status} . ' ' . ($r->{json}{error}{code} // ''), '400 GW-100', "$what: 400 GW-100");
    like($r->{json}{error}{message} // '', qr/^\Q$msg\E/, "$what: says so");
}
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 4: wrong, malformed, empty keys are 401; a user token is no key for the audit endpoint
--- init
my $r = main::ask('sark_gw_' . ('0' x 32), main::analyst('t4'));
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '401 AU-002 invalid gateway API key', 'unknown key: 401 AU-002');
$r = main::ask('sark_gw_XYZ', main::analyst('t4'));
is("$r->{status} $r->{json}{error}{code}", '401 AU-002', 'malformed key: 401 AU-002');
$r = main::ask(uc($main::K1) =~ s/^SARK_GW_/sark_gw_/r, main::analyst('t4'));
is("$r->{status} $r->{json}{error}{code}", '401 AU-002', 'upper-case hex: 401 AU-002');
$r = main::ask('', main::analyst('t4'));
is("$r->{status} $r->{json}{error}{code}", '401 AU-001', 'empty header: 401 AU-001');
$r = authorize({ action => 'gateway:tool:invoke', server_name => 'postgres-mcp', tool_name => 'list_tables',
                 user => main::analyst('t4') },
               headers => { 'X-Gateway-Api-Key' => [$main::K1, 'sark_gw_' . ('0' x 32)] });
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '400 GW-100 more than one X-Gateway-Api-Key header',
   'two key headers: 400, whichever comes first');
$r = http_request('POST', '/api/v1/gateway/audit', token => jwt(roles => ['admin']),
                  body => { event_type => 'x', decision => 'allow', reason => 'r', timestamp => 1, gateway_request_id => 'g' });
is("$r->{status} $r->{json}{error}{code}", '401 AU-002', 'a user token on the audit endpoint: 401 AU-002');
is(scalar(audit_rows_for('ana-' . $main::N . '-t4')), 0, 'nothing audited');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 5: scopes: an audit-only key records events and may not ask decisions (403 AZ-002)
--- init
my $key = main::new_key('audit-only', '--scopes', 'audit');
ok(main::poll_until(10, sub {
    http_request('POST', '/api/v1/gateway/audit', headers => { 'X-Gateway-Api-Key' => $key },
                 body => { event_type => 'tool_invoke', user_id => "gwev-$main::N", decision => 'allow', reason => 'r',
                           timestamp => time, gateway_request_id => "g-$main::N" })->{status} == 201 }),
   'the audit endpoint takes its event (201)');
my $kid = pg_value("SELECT id FROM gateway_keys WHERE name = 'audit-only-$main::N'");
my @ev;
poll_until(10, sub { @ev = audit_rows_for("gwev-$main::N"); @ev });
like($ev[0]{metadata} // '', qr/"gateway_key": "\Q$kid\E"/, 'the event\'s row names the key that posted it');
my $f = http_request('POST', '/api/v1/gateway/audit', headers => { 'X-Gateway-Api-Key' => $key },
                     body => { event_type => 'tool_invoke', user_id => "gwev-$main::N", decision => 'allow', reason => 'r',
                               timestamp => time, gateway_request_id => "g2-$main::N",
                               metadata => { gateway_key => 'gk_000000000000' } });
is("$f->{status} $f->{json}{error}{code} $f->{json}{error}{message}",
   '400 GW-100 field "metadata" may not hold "gateway_key": sark records the key that posts the event',
   'an event naming a key itself: 400');
my @when = map {
    http_request('POST', '/api/v1/gateway/audit', headers => { 'X-Gateway-Api-Key' => $key },
                 body => { event_type => 'tool_invoke', user_id => "gwev-$main::N", decision => 'allow', reason => 'r',
                           timestamp => $_, gateway_request_id => "g3-$main::N" })->{status}
} 0, time + 7200, time - 86400;
is("@when", '400 400 201', 'timestamps: 1970 and two hours ahead refused, yesterday taken');
my $r = main::ask($key, main::analyst('t5'));
is("$r->{status} $r->{json}{error}{code}", '403 AZ-002', 'decision API: 403 AZ-002');
like($r->{json}{error}{message}, qr/lacks the scope "authorize"/, 'names the scope');
my $dk = main::new_key('decide-only', '--scopes', 'authorize');
ok(main::known($dk), 'an authorize-only key decides');
$r = http_request('POST', '/api/v1/gateway/audit', headers => { 'X-Gateway-Api-Key' => $dk },
                  body => { event_type => 'x', decision => 'allow', reason => 'r', timestamp => 1, gateway_request_id => 'g' });
is("$r->{status} $r->{json}{error}{code}", '403 AZ-002', 'and may not record events');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 6: an expired key is 401 AU-003
--- init
my $key = main::new_key('expiring', '--expires-in', '1');
ok(main::known($key), 'valid before its expiry');
my $id = pg_value("SELECT id FROM gateway_keys WHERE name = 'expiring-$main::N'");
pg_value("UPDATE gateway_keys SET expires_at = now() - interval '1 second' WHERE id = '$id' RETURNING id");
redis_publish('sark:keys', 'changed');
my $r;
poll_until(10, sub { $r = main::ask($key, main::analyst('t6')); $r->{status} == 401 });
is("$r->{status} $r->{json}{error}{code} $r->{json}{error}{message}", '401 AU-003 gateway API key expired',
   'expired: 401 AU-003');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 7: a revoked key stops working within a second, even for a decision in L1
--- init
my $key = main::new_key('revoked');
ok(main::known($key), 'the key works');
my $u = main::analyst('t7');
my $r = main::ask($key, $u);
$r = main::ask($key, $u);
is($r->{json}{metadata}{cache}, 'L1', 'its decision is in L1');
my ($rc, $out) = main::keys_cmd('revoke', "revoked-$main::N");
my $t0 = Time::HiRes::time();
like($out, qr/^revoked gk_[0-9a-f]{12}$/m, 'revoke by name');
poll_until(5, sub { main::ask($key, $u)->{status} == 401 });
my $took = Time::HiRes::time() - $t0;
ok($took < 1, sprintf('refused within a second (%.3f s)', $took));
$r = main::ask($key, $u);
is("$r->{status} $r->{json}{error}{code}", '401 AU-002', 'revoked: 401 AU-002, the L1 entry unreachable');
($rc, $out) = main::keys_cmd('list');
like($out, qr/\trevoked-\Q$main::N\E\t.*\trevoked$/m, 'list: revoked');
($rc) = main::keys_cmd('revoke', "revoked-$main::N");
is($rc, 1, 'revoking it again: no active key, exit 1');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 8: the revocation message alone (another host's revoke) removes the key before the database says so; one not sealed with the key is ignored
--- init
my $key = main::new_key('announced');
ok(main::known($key), 'the key works');
redis_publish('sark:keys', 'revoke:' . Digest::SHA::sha256_hex($key), sealed => 0);
redis_publish('sark:keys', 'revoke:' . Digest::SHA::sha256_hex($key), key => 'another-key');
Time::HiRes::sleep(0.5);
is(main::ask($key, main::analyst('t8'))->{status}, 200, 'bare, or sealed with another key: ignored, the key works');
redis_publish('sark:keys', 'revoke:' . Digest::SHA::sha256_hex($key));
my $r;
poll_until(5, sub { $r = main::ask($key, main::analyst('t8')); $r->{status} == 401 });
is($r->{status}, 401, 'refused at once, though the row is not revoked');
redis_publish('sark:keys', 'changed');
Time::HiRes::sleep(0.5);
is(main::ask($key, main::analyst('t8'))->{status}, 401, 'a reload from the database does not bring it back');
# an admin command run with another CACHE_L2_HMAC_KEY: its message is not
# believed, but sarkd reads the database on it
my $k2 = main::new_key('hinted');
ok(main::known($k2), 'another key works');
pg_value("UPDATE gateway_keys SET revoked_at = now() WHERE name = 'hinted-$main::N' RETURNING id");
Time::HiRes::sleep(1.1);    # past the once-a-second reload of unsealed messages
redis_publish('sark:keys', 'changed', key => 'another-key');
ok(poll_until(3, sub { main::ask($k2, main::analyst('t8'))->{status} == 401 }),
   'revoked in the database, announced with another key: refused within seconds, not KEYS_REFRESH_MS');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 9: sarkd gone: keys from it are 503 (a revocation could not arrive); back with sarkd
--- init
my $key = main::new_key('outage');
ok(main::known($key), 'the key works');
stack('stop', 'sarkd');
my $r;
poll_until(5, sub { $r = main::ask($key, main::analyst('t9')); $r->{status} == 503 });
is("$r->{status} $r->{json}{error}{code}", '503 CN-001', 'sarkd stopped: 503 CN-001');
like($r->{json}{error}{message}, qr/gateway keys are not known yet/, 'says why');
ok($r->{headers}{'retry-after'}, 'Retry-After');
stack('start', 'sarkd');
ok(main::known($key), 'sarkd back: the key works again');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 10: sarkd connected but stalled: its keys are distrusted within about a second, even a decision in L1 (a revocation could not arrive), and a key revoked meanwhile is refused once it answers again
--- init
my $key = main::new_key('stalled');
ok(main::known($key), 'the key works');
my $u = main::analyst('t10');
ok(poll_until(5, sub { (main::ask($key, $u)->{json}{metadata}{cache} // '') eq 'L1' }), 'its decision is in L1');
stack('pause', 'sarkd');
my $t0 = Time::HiRes::time();
my ($rc, $out) = main::keys_cmd('revoke', "stalled-$main::N");
my $r;
poll_until(5, sub { $r = main::ask($key, $u); $r->{status} == 503 });
my $took = Time::HiRes::time() - $t0;
stack('resume', 'sarkd');
is("$r->{status} $r->{json}{error}{code}", '503 CN-001', 'sarkd stalled: 503 CN-001, not the L1 allow');
like($r->{json}{error}{message}, qr/sarkd has not answered/, 'says why');
ok($took < 2, sprintf('within %.3f s of the stall', $took));
ok(poll_until(5, sub { main::ask($key, $u)->{status} == 401 }), 'sarkd answering again: the revoked key is 401');
--- request
GET /api/v1/gateway/audit
--- error_code: 405



=== TEST 11: a request an old worker finishes after nginx -s reload still takes its gateway key (the exiting worker keeps probing sarkd)
--- init
my $key = main::new_key('reload');
ok(main::known($key), 'the key works');
require IO::Socket::INET;
my $body = JSON::PP->new->encode({ action => 'gateway:tool:invoke', server_name => 'postgres-mcp',
                                   tool_name => 'list_tables', user => main::analyst('t11') });
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or die "connect: $!";
print $s "POST /api/v1/gateway/authorize HTTP/1.1\r\nHost: localhost\r\n";
Time::HiRes::sleep(0.2);
(my $prefix = Test::Sark::html_dir()) =~ s{/html$}{};
open my $fh, '<', "$prefix/logs/nginx.pid" or die "nginx.pid: $!";
my ($master) = <$fh> =~ /(\d+)/;
kill 'HUP', $master;
Time::HiRes::sleep(3);      # past the 1.2 s a silent sarkd is trusted
print $s "X-Gateway-Api-Key: $key\r\nContent-Type: application/json\r\nConnection: close\r\n"
       . "Content-Length: " . length($body) . "\r\n\r\n$body";
local $/;
my $answer = <$s> // '';
like($answer, qr{^HTTP/1\.1 200 }, 'answered 200 by the exiting worker') or diag(substr($answer, 0, 300));
--- request
GET /api/v1/gateway/audit
--- error_code: 405
