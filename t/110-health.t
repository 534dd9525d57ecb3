# Health endpoints (sark_api health_live | health_ready | health_detailed):
# the worker answers liveness itself; readiness and the detailed report
# come from sarkd's status over the worker's connection.  Readiness flips
# with OPA stopped and back, and with sarkd gone; Redis going away makes
# the report degraded (its breaker open), never unready.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(http_request poll_until);

repeat_each(1);
no_shuffle();

plan tests => 33;

sub get { http_request('GET', $_[0]) }

sub ready_is {
    my ($status, $what) = @_;
    my $r;
    poll_until(15, sub { $r = get('/health/ready'); $r->{status} == $status });
    is($r->{status}, $status, $what) or diag($r->{body});
    return $r;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /health          { sark_api health_live; }
    location = /health/live     { sark_api health_live; }
    location = /health/ready    { sark_api health_ready; }
    location = /health/detailed { sark_api health_detailed; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: live, ready and detailed on a healthy stack; only GET and HEAD
--- init
for my $p ('/health', '/health/live') {
    my $r = main::get($p);
    is("$r->{status} $r->{body}", qq(200 {"status":"alive"}\n), "$p: alive");
}
my $r = http_request('POST', '/health/live', body => '{}');
is($r->{status}, 405, 'POST: 405');
is($r->{headers}{allow} // '', 'GET, HEAD', 'POST: Allow: GET, HEAD');
main::ready_is(200, 'ready on a healthy stack');
$r = main::get('/health/detailed');
is($r->{status}, 200, 'detailed: 200');
is($r->{json}{status} // '', 'healthy', 'detailed: healthy');
my $deps = $r->{json}{dependencies} || {};
is(join(' ', sort keys %$deps), 'opa postgresql redis sarkd', 'detailed: every dependency');
is(scalar(grep { $deps->{$_}{healthy} && $deps->{$_}{circuit} eq 'closed' } keys %$deps), 4,
   'detailed: each healthy, circuit closed');
ok(defined $deps->{opa}{latency_ms} && $deps->{opa}{latency_ms} >= 0, 'detailed: OPA\'s last latency');
ok($r->{json}{cache}{enabled}, 'detailed: the L1 zone');
ok(defined $r->{json}{audit}{queued_events}, 'detailed: the audit queue');
like($r->{json}{sarkd}{policy_revision} // '', qr/^[0-9a-f]+$/, 'detailed: the policy revision');
--- request
HEAD /health/ready
--- error_code: 200
--- no_error_log
[alert]



=== TEST 2: OPA stopped: not ready (503, the reason, Retry-After), the report unhealthy; back when OPA is
--- init
stack('stop', 'opa');
my $r = main::ready_is(503, 'OPA stopped: not ready');
like($r->{json}{reason} // '', qr/^OPA is not answering/, 'the reason names OPA');
is($r->{headers}{'retry-after'} // '', '1', 'Retry-After');
$r = main::get('/health/detailed');
is("$r->{status} " . ($r->{json}{status} // ''), '503 unhealthy', 'detailed: 503 unhealthy');
ok(!$r->{json}{dependencies}{opa}{healthy} && length($r->{json}{dependencies}{opa}{error} // ''),
   'detailed: OPA unhealthy, with its error');
stack('start', 'opa');
main::ready_is(200, 'OPA back: ready again');
--- request
GET /health/live
--- error_code: 200



=== TEST 3: Redis stopped: degraded, its breaker open, still ready
--- init
stack('stop', 'redis');
my $r;
poll_until(15, sub { $r = main::get('/health/detailed'); ($r->{json}{dependencies}{redis}{circuit} // '') eq 'open' });
is($r->{json}{dependencies}{redis}{circuit} // '', 'open', 'Redis stopped: its circuit is open');
is($r->{json}{status} // '', 'degraded', 'the report is degraded');
is($r->{status}, 200, 'degraded is still 200');
is(main::get('/health/ready')->{status}, 200, 'still ready: L1 and OPA hold');
stack('start', 'redis');
poll_until(15, sub { $r = main::get('/health/detailed'); ($r->{json}{status} // '') eq 'healthy' });
is($r->{json}{status} // '', 'healthy', 'Redis back: healthy again');
--- request
GET /health/live
--- error_code: 200



=== TEST 4: sarkd gone: not ready, sarkd unhealthy; back when it is
--- init
stack('stop', 'sarkd');
my $r = main::ready_is(503, 'sarkd stopped: not ready');
like($r->{json}{reason} // '', qr/sarkd/, 'the reason names sarkd');
$r = main::get('/health/detailed');
ok(!$r->{json}{dependencies}{sarkd}{healthy} && ($r->{json}{dependencies}{sarkd}{circuit} // '') eq 'open',
   'detailed: sarkd unhealthy');
stack('start', 'sarkd');
main::ready_is(200, 'sarkd back: ready again');
--- request
GET /health
--- error_code: 200
