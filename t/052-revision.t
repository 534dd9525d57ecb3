# A decision carries the policy revision that made it: OPA reports the
# revision of its bundle with every answer, and that revision, not one
# polled before or after, stamps the answer, its cache keys and its audit
# row.  Under load, a deny-all policy is replaced by one that allows and
# then rolled back: no answer is an allow stamped with the deny-all
# revision, and after the rollback nobody keeps an allow.  A change of
# the bundle's data alone is a new revision too, and OPA refuses data
# written around the bundle.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce http_request authorize decision_is poll_until l1_ready
    opa_bundle opa_revision);
use Time::HiRes ();
use POSIX ();

repeat_each(1);
no_shuffle();
workers(2);

# block 1: 10 in init + 3; block 2: 5 in init + 3
plan tests => 10 + 3 + 5 + 3;

our $N = nonce();
our $USERS = 35;
our $LIST_TABLES = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
                 . '"tool_name":"list_tables"}';
our %TOKEN = map { $_ => jwt(sub => "u-$N-$_", email => "u$_\@example.com",
                             roles => ['analyst']) } 1 .. $USERS;
our $restore;

END { opa_bundle() if $restore }

our $DENY_ALL = <<'_REGO_';
package sark.gateway

deny contains "everything is denied by the test policy" if {
	true
}
_REGO_

our $DENY_BY_DATA = <<'_REGO_';
package sark.gateway

deny contains "denied by the test data" if {
	data.sark_test.deny_all == true
}
_REGO_

# The load: users ask list_tables with the current quarter second as a
# parameter, so every quarter second brings fresh questions (misses) and
# repeats them (hits).  One line per answer: "user slot allow revision".
our $T0 = Time::HiRes::time();

sub question {
    my ($slot) = @_;
    return '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
         . '"tool_name":"list_tables","parameters":{"slot":' . $slot . '}}';
}

sub load {
    my ($out, $stop, $seed) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    my $i = $seed;
    until (-e $stop) {
        my $u = 1 + $i++ % $USERS;
        my $slot = int((Time::HiRes::time() - $T0) * 4);
        my $r = authorize(question($slot), token => $TOKEN{$u}, timeout => 5);
        my $j = $r->{json};
        next unless ref $j eq 'HASH' && exists $j->{allow};
        printf $fh "%d %d %d %s\n", $u, $slot, $j->{allow} ? 1 : 0,
            $j->{metadata}{policy_revision};
    }
    close $fh;
    POSIX::_exit(0);
}

# OPA answers under revision REV; with cached => 1, the workers also key
# their L1 with it (an allow asked twice is an L1 hit of that revision)
sub served {
    my ($rev, %opt) = @_;
    return poll_until(5, sub {
        my $tok = jwt(sub => "probe-$N-" . rand, roles => ['analyst']);
        my $r = authorize($LIST_TABLES, token => $tok);
        $r = authorize($LIST_TABLES, token => $tok) if $opt{cached};
        return ($r->{json}{metadata}{policy_revision} // '') eq $rev
               && (!$opt{cached} || $r->{json}{metadata}{cache} eq 'L1');
    });
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => "    location = /api/v1/gateway/authorize { sark_api authorize; }\n");
});

run_tests();

__DATA__

=== TEST 1: a deny-all policy, replaced by one that allows and rolled back under load: no allow is ever stamped with the deny-all revision, and none survives the rollback
--- init
l1_ready() or diag('the workers did not learn the policy revision');
$main::restore = 1;
my $deny = opa_bundle('test_deny_all.rego' => $main::DENY_ALL);
my $allow = opa_bundle();
isnt($deny, $allow, "two revisions: deny-all $deny, shipped $allow");
opa_bundle('test_deny_all.rego' => $main::DENY_ALL);
ok(main::served($deny), 'the workers use the deny-all revision');

my $dir = html_dir() . '/..';
my $stop = "$dir/load.stop";
unlink $stop;
my @kids = map { main::load("$dir/load.$_", $stop, $_ * 11) } 1 .. 3;
is(opa_bundle(), $allow, 'the allowing policy pushed');
Time::HiRes::sleep(2);
is(opa_bundle('test_deny_all.rego' => $main::DENY_ALL), $deny, 'rolled back to deny-all');
Time::HiRes::sleep(2.5);
open my $s, '>', $stop; close $s;
waitpid $_, 0 for @kids;

my (%n, %asked, @wrong);
for my $k (1 .. 3) {
    open my $fh, '<', "$dir/load.$k" or next;
    while (my $line = <$fh>) {
        my ($u, $slot, $allowed, $rev) = split ' ', $line;
        $n{$rev}{$allowed}++;
        $asked{"$u $slot"} = 1;
        push @wrong, $line if ($rev eq $deny && $allowed) || ($rev eq $allow && !$allowed);
    }
}
diag(join ', ', map { my $r = $_; "$r: " . join('/', map { "$_=" . ($n{$r}{$_} // 0) } 0, 1) } sort keys %n);
ok(($n{$allow}{1} // 0) > 0, 'under load, some answers came from the allowing policy');
ok(($n{$deny}{0} // 0) > 0, 'and some from the deny-all one');
is(scalar @wrong, 0, 'every answer was what the revision it carries decides')
    or diag("first: $wrong[0]");

# every question asked during the run, asked again after the rollback
my (@kept, @other);
for my $q (sort keys %asked) {
    my ($u, $slot) = split ' ', $q;
    my $r = authorize(main::question($slot), token => $main::TOKEN{$u});
    push @kept, $q if $r->{status} != 200 || $r->{json}{allow};
    push @other, $q if ($r->{json}{metadata}{policy_revision} // '') ne $deny;
}
is(scalar @kept, 0, 'after the rollback no question asked during the run (' . scalar(keys %asked)
                    . ') is answered with an allow') or diag("first: $kept[0]");
is(scalar @other, 0, 'and every answer carries the deny-all revision');
ok(main::served($allow = opa_bundle(), cached => 1), 'the shipped policy back');
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer $main::TOKEN{1}"
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]



=== TEST 2: a change of the bundle's data alone is a new revision; data written around the bundle is refused
--- init
my $tok = jwt(sub => "u-$main::N-data", roles => ['analyst']);
my $open = opa_bundle('test_deny_by_data.rego' => $main::DENY_BY_DATA,
                      'sark_test/data.json' => '{"deny_all": false}');
main::served($open, cached => 1);
decision_is(authorize($main::LIST_TABLES, token => $tok), {allow => 1}, 'data says allow');
decision_is(authorize($main::LIST_TABLES, token => $tok), {allow => 1, cache => 'L1'},
            'and the allow is cached');
my $closed = opa_bundle('test_deny_by_data.rego' => $main::DENY_BY_DATA,
                        'sark_test/data.json' => '{"deny_all": true}');
isnt($closed, $open, 'only the data changed, and the revision did');
my $last;
ok(poll_until(5, sub { $last = authorize($main::LIST_TABLES, token => $tok);
                       !$last->{json}{allow} }),
   'the cached allow is not served under the new data');
my $put = http_request('PUT', "http://127.0.0.1:$ENV{TEST_NGINX_OPA_PORT}/v1/data/sark_test",
                       body => '{"deny_all": false}');
is($put->{status}, 400, 'OPA refuses data written outside the bundle (its roots are the bundle\'s)');
opa_bundle();
undef $main::restore;
--- request eval
"POST /api/v1/gateway/authorize\n$main::LIST_TABLES"
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "u-$main::N-after", roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,
--- no_error_log
[error]
