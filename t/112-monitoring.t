# The Grafana dashboard and the Prometheus alert rules in conf/monitoring/:
# well-formed (JSON; YAML rules with a severity and a summary each; checked
# by promtool where it is installed), and every metric they name is one
# /metrics really serves, as the reference parser reads it.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(repo_root l1_ready metrics_samples);
use JSON::PP ();

repeat_each(1);
no_shuffle();

plan tests => 8;

our $DIR = repo_root() . '/conf/monitoring';

# the names of the samples /metrics serves
sub served_names {
    my ($s) = metrics_samples();
    my %n = map { /^([^{]+)/ ? ($1 => 1) : () } keys %$s;
    return \%n;
}

sub names_in { my %n = map { $_ => 1 } $_[0] =~ /\b(sark_[a-z0-9_]+)/g; keys %n }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => <<'_EOC_');
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /metrics { sark_api metrics; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: dashboard and alert rules name only metrics /metrics serves
--- init
l1_ready();
my $served = main::served_names();

open my $fh, '<', "$main::DIR/sark-dashboard.json" or die $!;
my $dash = eval { JSON::PP::decode_json(do { local $/; <$fh> }) };
ok($dash && @{ $dash->{panels} || [] } >= 5, 'the dashboard is JSON with its panels');
my @exprs = map { $_->{expr} } map { @{ $_->{targets} || [] } } @{ $dash->{panels} || [] };
my @missing = grep { !$served->{$_} } map { main::names_in($_) } @exprs;
is("@missing", '', 'every metric of the dashboard is served');

my $rules = `/usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' $main::DIR/sark-alerts.yml`;
my $doc = eval { JSON::PP::decode_json($rules) };
my @r = map { @{ $_->{rules} || [] } } @{ $doc->{groups} || [] };
ok(@r >= 5, 'the alert rules are YAML, ' . scalar(@r) . ' rules');
is(scalar(grep { !($_->{alert} && $_->{expr} && $_->{labels}{severity} && $_->{annotations}{summary}) } @r), 0,
   'each rule has a name, an expression, a severity and a summary');
@missing = grep { !$served->{$_} } map { main::names_in($_->{expr}) } @r;
is("@missing", '', 'every metric of the rules is served');
is(join(' ', sort map { $_->{alert} } @r),
   'SarkAuditEventsLost SarkAuditSpooling SarkCircuitBreakerOpen SarkDecisionErrors SarkDecisionLatencyHigh SarkOpaDown SarkdDown',
   'OPA down, sarkd down, a breaker open, spooling, lost events, p99 over budget, errors');
SKIP: {
    skip 'promtool is not installed', 1 unless grep { -x "$_/promtool" } split /:/, $ENV{PATH};
    my $out = `promtool check rules $main::DIR/sark-alerts.yml 2>&1`;
    is($? >> 8, 0, 'promtool check rules') or diag($out);
}
--- request
GET /metrics
--- error_code: 200
