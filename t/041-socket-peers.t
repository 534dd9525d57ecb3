# Who may talk to sarkd on its socket.  The socket file is 0660 and
# belongs to the group of nobody (what nginx's workers run as here);
# beyond the file's permissions sarkd checks every peer (SO_PEERCRED) and
# accepts root, itself, SARKD_ALLOWED_UIDS and SARKD_ALLOWED_GIDS
# (scripts/stack allows the uid nobody; TEST 3 restarts sarkd with nobody's
# group allowed as well, and shows that group is refused otherwise).  A
# process of another user
# that can open the socket (here: a member of nobody's group by a
# supplementary group) is closed at once: nothing it sends is answered,
# stored or applied, and sarkd logs why.  An allowed peer's audit batch
# with an invalid event has that event set aside and the others stored.
#
# Frames are built from shared/sark_proto.h's numbers.  The clients run as
# user daemon through setpriv, so the suite needs root (as `make t` is
# run); every block also asks the decision API through nginx, whose
# workers (nobody) must keep working.
use lib 't/lib';
use Test::Sark;
use POSIX ();
use Time::HiRes ();
use File::Temp ();
use Test::Sark::Util qw(nonce authorize poll_until redis_cli redis_keys pg_query pg_value
    audit_rows_for sarkd_log_mark sarkd_log_since);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

our ($DAEMON_UID, $DAEMON_GID) = (getpwnam('daemon'))[2, 3];
our $NOBODY_GID = (getpwnam('nobody'))[3];
our $NOBODY_GROUP = defined $NOBODY_GID ? getgrgid($NOBODY_GID) : undef;

if ($> != 0 || !defined $DAEMON_UID || !defined $NOBODY_GROUP || !-x '/usr/bin/setpriv') {
    plan skip_all => 'needs root, users daemon and nobody, and setpriv';
}

# Each block checks its status, body and error log (3); the init sections
# hold 36 further tests.
plan tests => repeat_each() * (blocks() * 3) + 37;

our $N = nonce();

stack('start', 'redis', 'postgres');

# A sarkd of the suite's own, with its socket in a directory every user can
# enter, so that another user's process can reach the socket wherever the
# checkout is (a clone in a mode-700 home directory too).  It shares OPA,
# Redis and PostgreSQL; this suite's nginx uses it.
our $RUN = File::Temp::tempdir('sark-peers-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $RUN or die "chmod $RUN: $!";
our $SOCKET = "$RUN/sarkd.sock";
$ENV{TEST_NGINX_SARKD_SOCKET} = $SOCKET;
$ENV{SARK_SARKD_RUN_DIR} = $RUN;
{
    local $ENV{SARK_RUN_DIR} = $RUN;
    stack('start', 'sarkd');
}

END {
    local $ENV{SARK_RUN_DIR} = $RUN;
    eval { stack('stop', 'sarkd') };
}

# ---------------------------------------------------------------- frames

# the protocol's numbers, as the header defines them
our %P;
{
    open my $fh, '<', "$ENV{TEST_NGINX_REPO}/shared/sark_proto.h" or die "sark_proto.h: $!";
    while (<$fh>) {
        next unless /^#define\s+(SARK_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b/;
        my ($name, $v) = ($1, $2);
        $P{$name} = $v =~ /^0x/ ? hex $v : $v + 0;
    }
}

sub tlv { my ($tag, $v) = @_; pack('nN', $P{$tag}, length $v) . $v }
sub u64 { pack 'Q>', $_[0] }

sub frame {
    my ($type, $id, $flags, $payload) = @_;
    return pack('nCCnnNN', $P{SARK_PROTO_MAGIC}, $P{SARK_PROTO_VERSION}, $P{$type}, $flags, 0,
                $id, length $payload) . $payload;
}

# frames(BYTES): [type, id, payload] of each whole frame in BYTES
sub frames {
    my ($b) = @_;
    my @f;
    while (length $b >= 16) {
        my (undef, undef, $type, undef, undef, $id, $len) = unpack 'nCCnnNN', $b;
        last if length $b < 16 + $len;
        push @f, [$type, $id, substr($b, 16, $len)];
        substr($b, 0, 16 + $len) = '';
    }
    return @f;
}

# fields(PAYLOAD): { tag => value } of a TLV list
sub fields {
    my ($p) = @_;
    my %f;
    while (length $p >= 6) {
        my ($tag, $len) = unpack 'nN', $p;
        $f{$tag} = substr($p, 6, $len);
        substr($p, 0, 6 + $len) = '';
    }
    return \%f;
}

sub new_id { join '', map { chr int rand 256 } 1 .. 16 }
sub uuid { my @h = unpack '(H2)16', $_[0]; join '-', join('', @h[0 .. 3]), join('', @h[4 .. 5]),
                                                     join('', @h[6 .. 7]), join('', @h[8 .. 9]),
                                                     join('', @h[10 .. 15]) }

# an audit event for subject u-<run>-WHO with DECISION
sub audit_event {
    my ($id, $who, $decision) = @_;
    return tlv(SARK_AUD_EVENT => tlv(SARK_AUDF_ID => $id)
        . tlv(SARK_AUDF_TIMESTAMP => u64(int(Time::HiRes::time() * 1e6)))
        . tlv(SARK_AUDF_EVENT_TYPE => 'authorization')
        . tlv(SARK_AUDF_USER_ID => "u-$N-$who")
        . tlv(SARK_AUDF_DECISION => $decision)
        . tlv(SARK_AUDF_REASON => 'sent straight to the socket'));
}

# ---------------------------------------------------------------- client

# Connects to the socket, sends the bytes, and reads until every frame type
# wanted has come, the peer closes, or the time is up; prints one line:
#   connect ERRNO | wrote N read N (done|eof|error ERRNO|timeout) HEX
our $CLIENT = <<'_PL_';
use strict; use warnings;
use IO::Select; use IO::Socket::UNIX; use Socket (); use Time::HiRes ();
my ($path, $hex, $want, $secs) = @ARGV;
$SIG{PIPE} = 'IGNORE';
my $s = IO::Socket::UNIX->new(Type => Socket::SOCK_STREAM(), Peer => $path);
if (!$s) { printf "connect %d\n", $! + 0; exit 0 }
binmode $s;
my $w = syswrite $s, pack('H*', $hex);
my %want = map { $_ => 1 } grep { length } split /,/, $want;
my ($got, $how) = ('', 'timeout');
my $end = Time::HiRes::time() + $secs;
my $sel = IO::Select->new($s);
while (%want && (my $left = $end - Time::HiRes::time()) > 0) {
    last unless $sel->can_read($left);
    my $n = sysread $s, my $buf, 65536;
    if (!defined $n) { $how = 'error ' . ($! + 0); last }
    if ($n == 0) { $how = 'eof'; last }
    $got .= $buf;
    my $off = 0;
    while (length($got) - $off >= 16) {
        my $len = unpack 'N', substr($got, $off + 12, 4);
        last if length($got) - $off < 16 + $len;
        delete $want{ord substr($got, $off + 3, 1)};
        $off += 16 + $len;
    }
    $how = 'done' unless %want;
}
printf "wrote %d read %d %s %s\n", $w // -1, length $got, $how, unpack('H*', $got);
_PL_

# talk(SETPRIV_ARGS, BYTES, WANT_TYPES, SECS): runs the client as the
# identity SETPRIV_ARGS give (none: as root); returns { connect_errno,
# read, how, frames }
sub talk {
    my ($as, $bytes, $want, $secs) = @_;
    my @cmd = (@$as ? ('setpriv', @$as, '--') : (), $^X, '-e', $CLIENT, $SOCKET,
               unpack('H*', $bytes), join(',', map { $P{$_} } @$want), $secs);
    # from /, with core modules only: the user may not enter the checkout
    my $pid = open(my $fh, '-|') // die "cannot run the client: $!";
    if ($pid == 0) {
        chdir '/' or POSIX::_exit(1);
        delete @ENV{qw(PERL5LIB PERLLIB)};
        exec @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return { connect_errno => $1 } if $out =~ /^connect (\d+)/;
    $out =~ /^wrote (-?\d+) read (\d+) (done|eof|error \d+|timeout) ([0-9a-f]*)$/m
        or die "client said: $out";
    return { wrote => $1, read => $2, how => $3, frames => [frames(pack 'H*', $4)] };
}

our @AS_DAEMON_IN_GROUP = ('--reuid=daemon', '--regid=daemon', "--groups=$NOBODY_GROUP");
our @AS_DAEMON_PRIMARY_GROUP = ('--reuid=daemon', "--regid=$NOBODY_GROUP", '--clear-groups');
our @AS_DAEMON_ALONE = ('--reuid=daemon', '--regid=daemon', '--clear-groups');

our $QUESTION = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
              . '"tool_name":"list_tables"}';

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config()) unless defined $block->http_config;
    $block->set_value(config => "    location = /api/v1/gateway/authorize { sark_api authorize; }\n")
        unless defined $block->config;
    # every block ends with a decision through nginx's workers (nobody)
    $block->set_value(request => "POST /api/v1/gateway/authorize\n$QUESTION")
        unless defined $block->request;
    $block->set_value(more_headers => "Authorization: Bearer "
                      . jwt(sub => "u-$N-worker", roles => ['analyst']))
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: the socket file is 0660 and belongs to nobody's group; a user outside it cannot connect
--- init
my @st = stat $main::SOCKET;
ok(@st && -S _, 'sarkd\'s socket exists');
is(sprintf('%04o', $st[2] & 07777), '0660', 'its mode is 0660');
is($st[5], $main::NOBODY_GID, "its group is $main::NOBODY_GROUP (SARKD_SOCKET_GROUP)");
my $r = main::talk(\@main::AS_DAEMON_ALONE, main::frame(SARK_MSG_PING => 1, 0, ''), [], 1);
is($r->{connect_errno}, POSIX::EACCES(), 'user daemon outside that group: connect() is refused');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 2: a peer that is not allowed is closed at once: nothing answered, cached, invalidated or audited
--- init
my $mark = sarkd_log_mark();
# a key the invalidation below would delete
is(scalar redis_cli('SET', "authz:u-$main::N-keep:x", 'kept', 'EX', '60'), 'OK', 'a key to keep');
my $aid = main::new_id();
my $bytes = main::frame(SARK_MSG_PING => 1, 0, '')
    . main::frame(SARK_MSG_AUTHZ_REQ => 2, 0,
                  main::tlv(SARK_REQ_ACTION => 'gateway:tool:invoke')
                  . main::tlv(SARK_REQ_SERVER_NAME => 'postgres-mcp')
                  . main::tlv(SARK_REQ_TOOL_NAME => 'execute_query')
                  . main::tlv(SARK_REQ_USER_ID => "u-$main::N-peer")
                  . main::tlv(SARK_REQ_USER_ROLE => 'admin')
                  . main::tlv(SARK_REQ_CACHE_KEY => "authz:u-$main::N-peer:forged")
                  . main::tlv(SARK_REQ_NOT_AFTER => main::u64((time + 3600) * 1000)))
    . main::frame(SARK_MSG_INVALIDATE_REQ => 3, 0,
                  main::tlv(SARK_INV_PATTERN => "authz:u-$main::N-keep:*"))
    . main::frame(SARK_MSG_AUDIT_BATCH => 4, $main::P{SARK_AUDIT_F_URGENT},
                  main::audit_event($aid, 'peer', 'allow'));
my $r = main::talk(\@main::AS_DAEMON_IN_GROUP, $bytes, ['SARK_MSG_PONG'], 5);
ok(!defined $r->{connect_errno}, "user daemon in group $main::NOBODY_GROUP can open the socket");
is($r->{read}, 0, 'not one byte is answered');
like($r->{how}, qr/^(eof|error \d+)$/, 'the connection is closed at once') or diag($r->{how});
is(scalar redis_keys("authz:u-$main::N-peer*"), 0, 'no decision was cached');
is(scalar redis_cli('GET', "authz:u-$main::N-keep:x"), 'kept', 'nothing was invalidated');
Time::HiRes::sleep(1.5);    # past sarkd's audit flush (the batch was urgent anyway)
is(pg_value("SELECT count(*) FROM gateway_audit_events WHERE id = '" . main::uuid($aid) . "'"),
   0, 'no audit row was written');
my @refused = sarkd_log_since($mark, 'connection refused: peer not allowed on the socket');
is(scalar @refused, 1, 'sarkd logged the refusal');
my $l = $refused[0] || {};
is($l->{level} // '', 'warn', 'at warn level');
is($l->{peer_uid} // '', $main::DAEMON_UID, 'with the peer\'s uid');
is($l->{peer_gid} // '', $main::DAEMON_GID, 'and gid');
ok(($l->{peer_pid} // 0) > 0, 'and pid');
ok(($l->{refused_total} // 0) >= 1, 'and the count of refusals');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 3: a peer allowed by its group (SARKD_ALLOWED_GIDS) is answered and can invalidate; without the setting that group is refused
--- init
is(scalar redis_cli('SET', "authz:u-$main::N-gone:x", 'x', 'EX', '60'), 'OK', 'a key to invalidate');
my $bytes = main::frame(SARK_MSG_PING => 1, 0, '')
    . main::frame(SARK_MSG_INVALIDATE_REQ => 3, 0,
                  main::tlv(SARK_INV_PATTERN => "authz:u-$main::N-gone:*"));
my $r = main::talk(\@main::AS_DAEMON_PRIMARY_GROUP, main::frame(SARK_MSG_PING => 1, 0, ''), ['SARK_MSG_PONG'], 3);
isnt($r->{how}, 'done', "as scripts/stack starts it, primary group $main::NOBODY_GROUP alone is not let in");
{
    local $ENV{SARK_RUN_DIR} = $main::RUN;
    local $ENV{SARK_SARKD_ALLOWED_GIDS} = $main::NOBODY_GROUP;
    stack('restart', 'sarkd');
}
$r = main::talk(\@main::AS_DAEMON_PRIMARY_GROUP, $bytes,
                ['SARK_MSG_PONG', 'SARK_MSG_INVALIDATE_RESP'], 5);
{
    local $ENV{SARK_RUN_DIR} = $main::RUN;
    stack('restart', 'sarkd');
}
# the workers reconnect (with back-off) before the block's request
poll_until(10, sub { authorize($main::QUESTION, token => jwt(sub => "u-$main::N-worker", roles => ['analyst']))->{status} == 200 });
is($r->{how}, 'done', "with SARKD_ALLOWED_GIDS=$main::NOBODY_GROUP, user daemon with that primary group gets its answers");
my %types = map { $_->[0] => $_->[1] } @{ $r->{frames} || [] };
is($types{ $main::P{SARK_MSG_PONG} }, 1, 'PONG for the PING');
is($types{ $main::P{SARK_MSG_INVALIDATE_RESP} }, 3, 'INVALIDATE_RESP for the invalidation');
is(scalar redis_keys("authz:u-$main::N-gone:*"), 0, 'and the key is gone');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[alert]



=== TEST 4: an audit batch with an invalid event (decision "maybe"): the valid event is stored, the other set aside
--- init
my $mark = sarkd_log_mark();
my ($good, $bad) = (main::new_id(), main::new_id());
my $r = main::talk([], main::frame(SARK_MSG_AUDIT_BATCH => 7, $main::P{SARK_AUDIT_F_URGENT},
                                   main::audit_event($good, 'mixed', 'allow')
                                   . main::audit_event($bad, 'mixed', 'maybe')),
                   ['SARK_MSG_AUDIT_ACK'], 10);
is($r->{how}, 'done', 'root is answered');
my ($ack) = grep { $_->[0] == $main::P{SARK_MSG_AUDIT_ACK} } @{ $r->{frames} || [] };
my $f = main::fields($ack ? $ack->[2] : '');
is(ord($f->{ $main::P{SARK_ACK_STATUS} } // "\xff"), $main::P{SARK_ACK_DURABLE},
   'the batch is acknowledged as durable');
is(unpack('N', $f->{ $main::P{SARK_ACK_EVENTS} } // "\0\0\0\0"), 1, 'for its one valid event');
my @rows = audit_rows_for("u-$main::N-mixed");
is(join(' ', map { "$_->{id}:$_->{decision}" } @rows), main::uuid($good) . ':allow',
   'only the valid event is a row');
my @lines = sarkd_log_since($mark, 'invalid audit event not stored; set aside');
is(scalar @lines, 1, 'the invalid event is logged');
my $l = $lines[0] || {};
is($l->{level} // '', 'error', 'at error level');
is($l->{id} // '', main::uuid($bad), 'with its id');
is($l->{field} // '', 'decision', 'the field');
like($l->{reason} // '', qr/"maybe" is not "allow" or "deny"/, 'and the reason');
my $file = $l->{file} // '';
like($file, qr{^\Q$main::RUN\E/spool/invalid-[0-9-]+\.copy$}, 'it is kept in the spool directory');
my $kept = -r $file ? do { local (@ARGV, $/) = ($file); <> } : '';
like($kept, qr/^\Q${\ main::uuid($bad)}\E\tauthorization\tu-$main::N-mixed\t.*\tmaybe\t/,
     'as a COPY row, as it came');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 5: an audit batch whose only event is invalid is rejected with the reason
--- init
my $bad = main::new_id();
my $r = main::talk([], main::frame(SARK_MSG_AUDIT_BATCH => 8, $main::P{SARK_AUDIT_F_URGENT},
                                   main::audit_event($bad, 'only-bad', 'perhaps')),
                   ['SARK_MSG_AUDIT_ACK'], 10);
my ($ack) = grep { $_->[0] == $main::P{SARK_MSG_AUDIT_ACK} } @{ $r->{frames} || [] };
my $f = main::fields($ack ? $ack->[2] : '');
is(ord($f->{ $main::P{SARK_ACK_STATUS} } // "\xff"), $main::P{SARK_ACK_REJECTED},
   'the batch is rejected');
like($f->{ $main::P{SARK_ACK_MESSAGE} } // '', qr/^event 1: decision "perhaps" is not/,
     'saying which event and why');
is(scalar(audit_rows_for("u-$main::N-only-bad")), 0, 'and no row is written');
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]
