# The L1 zone itself: its counters, eviction of the least recently used
# entry when it is full, the floor an overflowing pattern ring raises, and
# a stress run with two workers where hits, misses, evictions and
# invalidations all happen at once and no answer is another question's, or
# one an invalidation has removed.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request authorize decision_is poll_until l1_ready);
use POSIX ();
use Time::HiRes ();
use Time::Local ();

repeat_each(1);
no_shuffle();
workers(2);

# block 1: 3 + 2; block 2: 4 + 2; block 3: 2 + 2; block 4: 5 + 2
plan tests => 3 + 2 + 4 + 2 + 2 + 2 + 5 + 2;

our $N = nonce();
our $ADMIN_KEY = "l1-admin-key-$N";

sub question {
    my ($i) = @_;
    return '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
         . '"tool_name":"execute_query","parameters":{"query":"SELECT ' . $i . '"}}';
}

sub analyst {
    my ($who) = @_;
    return jwt(sub => "u-$N-$who", email => "$who\@example.com", roles => ['analyst']);
}

# the zone's counters, as the variables show them
sub counters {
    my $r = http_request('GET', '/counters');
    my %c = map { split /=/ } split ' ', $r->{body};
    return \%c;
}

# "2026-12-06T19:30:00.123Z" as Unix seconds
sub epoch {
    my ($t) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $ms) = $t =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z$/
        or return 0;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) + $ms / 1000;
}

sub invalidate {
    my ($pattern) = @_;
    return http_request('POST', '/api/v1/cache/invalidate', body => { pattern => $pattern },
                        headers => { 'X-Admin-Key' => $ADMIN_KEY });
}

add_block_preprocessor(sub {
    my $block = shift;
    # the smallest zone: 64 pages
    $block->set_value(http_config => <<"_EOC_");
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};
    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};
    sark_cache_zone sark_l1_small 256k;
    sark_admin_key $ADMIN_KEY;
    sark_audit off;
_EOC_
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/cache/invalidate  { sark_api invalidate; }
    location = /counters {
        return 200 "entries=$sark_cache_entries hits=$sark_cache_hits misses=$sark_cache_misses evictions=$sark_cache_evictions";
    }
_EOC_
    $block->set_value(request => "GET /counters") unless defined $block->request;
});

run_tests();

__DATA__

=== TEST 1: the counters move by exactly the lookups made, over both workers
--- init
l1_ready() or diag('the workers did not learn the policy revision');
my $c0 = main::counters();
my $tok = main::analyst('count');
authorize(main::question(1), token => $tok) for 1 .. 10;
authorize(main::question(2), token => $tok) for 1 .. 5;
my $c1 = main::counters();
is($c1->{hits} - $c0->{hits}, 13, '13 hits: the same two questions asked again');
is($c1->{misses} - $c0->{misses}, 2, '2 misses: their first asking');
is($c1->{entries} - $c0->{entries}, 2, 'two entries more');
--- error_code: 200
--- response_body_like: ^entries=\d+ hits=\d+ misses=\d+ evictions=\d+$



=== TEST 2: a full zone evicts the least recently used entry, and never fails a request
--- init
my $tok = main::analyst('fill');
authorize(main::question('first'), token => $tok);
my ($hits_first, @bad) = (0);
my $c0 = main::counters();
for my $i (1 .. 1500) {
    my $r = authorize(main::question("fill $i"), token => $tok);
    push @bad, "$i: $r->{status}" unless $r->{status} == 200;
    # "first" kept in use: it must stay
    if ($i % 50 == 0) {
        my $h = authorize(main::question('first'), token => $tok);
        $hits_first++ if $h->{json}{metadata}{cache} eq 'L1';
    }
}
my $c1 = main::counters();
ok(!@bad, 'every request was answered 200') or diag("@bad[0 .. 4]");
ok($c1->{evictions} > $c0->{evictions}, 'the zone evicted entries (' . ($c1->{evictions} - $c0->{evictions}) . ')');
is($hits_first, 30, 'the entry kept in use stayed in the zone');
decision_is(authorize(main::question('fill 1'), token => $tok), {allow => 1, cache => qr/^(MISS|L2)$/},
            'the least recently used one was evicted');
--- error_code: 200
--- response_body_like: evictions=[1-9]



=== TEST 3: when the ring of patterns overflows, the oldest one's time becomes a floor: everything cached before it counts as stale
--- init
my $tok = main::analyst('floor');
authorize(main::question('floor'), token => $tok);
decision_is(authorize(main::question('floor'), token => $tok), {allow => 1, cache => 'L1'},
            'cached');
Time::HiRes::sleep(0.6);
main::invalidate("authz:nobody-$main::N-$_:*") for 1 .. 33;
decision_is(authorize(main::question('floor'), token => $tok), {allow => 1, cache => qr/^(MISS|L2)$/},
            'after 33 unrelated patterns (the ring holds 32) it is decided again');
--- error_code: 200
--- response_body_like: ^entries=



=== TEST 4: two workers under load: hits, misses, evictions and invalidations at once; no answer is another user's, or one an invalidation removed
--- timeout: 60
--- init
my $dir = html_dir() . '/..';
my $stop = "$dir/l1-stress.stop";
unlink $stop;
my $users = 40;
my %tok = map { $_ => main::analyst("s$_") } 1 .. $users;

my @kids;
# askers: each user asks one of three questions; one line per answer
for my $k (1 .. 3) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', "$dir/l1-ask.$k" or POSIX::_exit(1);
        $fh->autoflush(1);
        my $i = $k * 7;
        until (-e $stop) {
            my $u = 1 + $i++ % $users;
            my $sent = Time::HiRes::time();
            my $r = authorize(main::question($i % 3), token => $tok{$u}, timeout => 5);
            my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
            printf $fh "%d %s %d %s %s %.3f %s\n", $u, $r->{status}, $j->{allow} ? 1 : 0,
                $j->{metadata}{cache} // '-', ($j->{reason} // '-') =~ s/ /_/gr, $sent,
                $j->{metadata}{evaluated_at} // '-';
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
# a filler: fresh questions that push entries out of the small zone
{
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $i = 0;
        authorize(main::question("filler $i"), token => main::analyst('filler'), timeout => 5)
            while !-e $stop && ++$i;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
# an invalidator: one user's entries at a time; "sent returned user" per line
{
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', "$dir/l1-inv" or POSIX::_exit(1);
        $fh->autoflush(1);
        my $i = 0;
        until (-e $stop) {
            my $u = 1 + $i++ % $users;
            my $sent = Time::HiRes::time();
            my $r = main::invalidate("authz:u-$main::N-s$u:*");
            printf $fh "%.3f %.3f %d %d\n", $sent, Time::HiRes::time(), $u, $r->{status}
                if $r->{status} == 200;
            Time::HiRes::sleep(0.05);
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
my $c0 = main::counters();
Time::HiRes::sleep(8);
open my $s, '>', $stop; close $s;
waitpid $_, 0 for @kids;
my $c1 = main::counters();

my (@wrong, @stale, %layers, $n);
my @inv;
open my $ih, '<', "$dir/l1-inv" or die "l1-inv: $!";
while (<$ih>) { my ($sent, $ret, $u) = split; push @inv, [$sent, $ret, $u] }
for my $k (1 .. 3) {
    open my $fh, '<', "$dir/l1-ask.$k" or next;
    while (my $line = <$fh>) {
        my ($u, $status, $allow, $cache, $reason, $sent, $evaluated) = split ' ', $line;
        $n++;
        $layers{$cache}++;
        push @wrong, $line if $status != 200 || !$allow || $reason !~ /_s$u\@example\.com_/;
        # an L1 answer asked for after an invalidation of its user returned
        # was decided after that invalidation was sent
        next unless $cache eq 'L1';
        my $last;
        for my $iv (@inv) {
            $last = $iv if $iv->[2] == $u && $iv->[1] < $sent && (!$last || $iv->[1] > $last->[1]);
        }
        next unless $last;
        push @stale, "$line (invalidation sent at $last->[0])"
            if main::epoch($evaluated) <= $last->[0];
    }
}
diag("$n answers (" . join(', ', map { "$_ $layers{$_}" } sort keys %layers) . '), '
     . scalar(@inv) . ' invalidations, ' . ($c1->{evictions} - $c0->{evictions}) . ' evictions');
ok($n > 500, 'the askers got answers');
ok(($layers{L1} // 0) > 100 && ($layers{MISS} // 0) + ($layers{L2} // 0) > 10, 'hits and misses both');
ok($c1->{evictions} > $c0->{evictions} && @inv > 20, 'evictions and invalidations meanwhile');
is(scalar @wrong, 0, 'every answer is the asking user\'s own') or diag("first: $wrong[0]");
is(scalar @stale, 0, 'no L1 answer outlived an invalidation of its user') or diag("first: $stale[0]");
--- error_code: 200
--- response_body_like: ^entries=
