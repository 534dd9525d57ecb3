# /metrics (sark_api metrics): the Prometheus text of every worker's
# counters, summed through the shared zone, and sarkd's, parsed here by
# the reference parser (python3-prometheus-client).  Counters move by
# exactly the requests sent, whichever of the two workers answered them.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize http_request l1_ready metrics_samples poll_until);

repeat_each(1);
no_shuffle();
workers(2);

plan tests => 28;

our $N = nonce();

sub scrape { metrics_samples() }

# the sum of the samples of NAME whose labels match LABELS (k=v, ...)
sub total {
    my ($s, $name, %want) = @_;
    my $t = 0;
    for my $k (keys %$s) {
        my ($n, $l) = $k =~ /^([^{]+)\{(.*)\}$/ or next;
        next unless $n eq $name;
        my %have = map { split /=/, $_, 2 } grep { length } split /,/, $l;
        next if grep { ($have{$_} // '') ne $want{$_} } keys %want;
        $t += $s->{$k};
    }
    return $t;
}

# sort by the first element of pairs (the init code runs in another
# package than the one sort would set $a and $b in)
sub by_first($$) { $_[0][0] <=> $_[1][0] }

sub ask {
    my ($tool, $tag) = @_;
    authorize({ action => 'gateway:tool:invoke', server_name => 'postgres-mcp',
                tool_name => $tool, parameters => { n => "$main::N-$tag" } },
              token => jwt(sub => "u-$main::N", roles => ['analyst']));
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /metrics { sark_api metrics; }
    location = /api/v1/cache/invalidate { sark_api invalidate; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: decisions, their latency and cache layers, summed over two workers, in text the reference parser reads
--- init
l1_ready() or diag('the worker did not learn the policy revision');
my ($s0, $r0) = main::scrape();
like($r0->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4}, 'Content-Type of the text format');
like($r0->{body}, qr/^# TYPE sark_gateway_authz_latency_seconds histogram$/m, 'the latency is a histogram');

# 30 allowed (one question: 1 miss, then hits), 10 denied (another question)
main::ask('list_tables', 'a') for 1 .. 30;
main::ask('drop_table', 'd') for 1 .. 10;
my ($s1) = main::scrape();
my $allow = main::total($s1, 'sark_gateway_authz_requests_total', decision => 'allow', action => 'gateway:tool:invoke')
          - main::total($s0, 'sark_gateway_authz_requests_total', decision => 'allow', action => 'gateway:tool:invoke');
my $deny = main::total($s1, 'sark_gateway_authz_requests_total', decision => 'deny')
         - main::total($s0, 'sark_gateway_authz_requests_total', decision => 'deny');
is($allow, 30, 'allowed decisions: exactly the 30 sent');
is($deny, 10, 'denied decisions: exactly the 10 sent');
my $miss = main::total($s1, 'sark_gateway_cache_misses_total') - main::total($s0, 'sark_gateway_cache_misses_total');
my $hits = main::total($s1, 'sark_gateway_cache_hits_total') - main::total($s0, 'sark_gateway_cache_hits_total');
is($miss + $hits, 40, 'hits and misses add up to the 40 decisions');
ok($miss >= 2 && $miss <= 4, "each question missed the L1 of the worker(s) that answered it first ($miss misses)");
my $count = main::total($s1, 'sark_gateway_authz_latency_seconds_count') - main::total($s0, 'sark_gateway_authz_latency_seconds_count');
is($count, 40, 'the latency histogram counted the 40');
my @buckets;
for my $k (keys %$s1) {
    my ($le) = $k =~ /^sark_gateway_authz_latency_seconds_bucket\{le=([^,}]+)\}$/ or next;
    push @buckets, [$le eq '+Inf' ? 9e99 : $le + 0, $s1->{$k}];
}
@buckets = map { $_->[1] } sort main::by_first @buckets;
is(scalar @buckets, 15, 'fifteen buckets, +Inf included');
is(scalar(grep { $buckets[$_] < $buckets[$_ - 1] } 1 .. $#buckets), 0, 'buckets are cumulative');
my $sub_ms = 0;
for my $k (keys %$s1) {
    my ($le) = $k =~ /^sark_gateway_authz_latency_seconds_bucket\{le=([^,}]+)\}$/ or next;
    $sub_ms++ if $le ne '+Inf' && $le < 0.001 && $s1->{$k} > 0;
}
ok($sub_ms >= 2, 'sub-millisecond buckets, used');
is(main::total($s1, 'sark_sarkd_up'), 1, 'sarkd answered the scrape');
is(main::total($s1, 'sark_gateway_dependency_up', dependency => 'opa'), 1, 'OPA up');
is(main::total($s1, 'sark_gateway_circuit_breaker_state', dependency => 'redis'), 0, 'Redis circuit closed');
ok(main::total($s1, 'sark_opa_requests_total') >= 2, 'sarkd counts its OPA evaluations');
my $opa = main::total($s1, 'sark_opa_request_duration_seconds_count') - main::total($s0, 'sark_opa_request_duration_seconds_count');
is($opa, main::total($s1, 'sark_opa_requests_total') - main::total($s0, 'sark_opa_requests_total'),
   'the OPA latency histogram, per server, counts each evaluation');
is(scalar(grep { /^sark_opa_request_duration_seconds_count\{server=http:\/\/127\.0\.0\.1:\d+\}$/ } keys %$s1), 1,
   'one series per OPA server, labelled with its URL');
--- request
GET /metrics
--- error_code: 200



=== TEST 2: OPA down: errors by component; sarkd down: its part is gone, the workers' stays
--- init
my ($s0) = main::scrape();
stack('stop', 'opa');
main::ask('list_tables', "outage-$_") for 1 .. 3;
my ($s1) = main::scrape();
is(main::total($s1, 'sark_gateway_errors_total', component => 'opa')
   - main::total($s0, 'sark_gateway_errors_total', component => 'opa'), 3, 'three answers without a decision, OPA\'s fault');
is(main::total($s1, 'sark_opa_errors_total') - main::total($s0, 'sark_opa_errors_total'), 3,
   'sarkd counts the three failed evaluations');
is(main::total($s1, 'sark_gateway_dependency_up', dependency => 'opa'), 0, 'OPA down');
stack('start', 'opa');
my $inv = http_request('POST', '/api/v1/cache/invalidate', token => jwt(sub => "u-$main::N-admin", roles => ['admin']),
                       body => { pattern => "authz:u-$main::N:*" });
is($inv->{status}, 200, 'an invalidation') or diag($inv->{body});
my ($s3) = main::scrape();
is(main::total($s3, 'sark_gateway_invalidations_total', result => 'issued')
   - main::total($s1, 'sark_gateway_invalidations_total', result => 'issued'), 1, 'counted as issued');
stack('stop', 'sarkd');
my ($s2) = main::scrape();
is(main::total($s2, 'sark_sarkd_up'), 0, 'sarkd away: sark_sarkd_up 0');
ok(main::total($s2, 'sark_gateway_authz_requests_total') >= 40, 'the workers\' counters are still there');
stack('start', 'sarkd');
--- request
GET /metrics
--- error_code: 200



=== TEST 3: credentials in OPA_URL (basic auth) do not reach /metrics (nor sarkd's status, which /health/detailed shows)
--- init
{
    local $ENV{SARK_OPA_URL} = "http://sark:opa-secret-$main::N\@127.0.0.1:$ENV{TEST_NGINX_OPA_PORT}";
    stack('restart', 'sarkd');
}
my $m;
poll_until(10, sub { $m = http_request('GET', '/metrics'); $m->{body} =~ /sark_opa_request_duration_seconds_count\{/ });
stack('restart', 'sarkd');
like($m->{body}, qr{sark_opa_request_duration_seconds_count\{server="http://\*\*\*\@127\.0\.0\.1:\d+"\}},
     'the server label hides the credentials');
unlike($m->{body}, qr/opa-secret/, 'the password is nowhere in /metrics');
--- request
GET /metrics
--- error_code: 200
