# sarkd at run time: SIGUSR1 logs its status (dependencies, audit,
# counters) as one JSON line; SIGHUP reads the settings again and applies
# LOG_LEVEL and ENABLE_PROFILING at once, naming the changed settings that
# need a restart; a bad value changes nothing.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(poll_until sarkd_log_mark sarkd_log_since repo_root);

repeat_each(1);
no_shuffle();

plan tests => 11;

our $ENV_FILE = html_dir() . '/../sarkd-runtime.env';

sub write_env {
    my ($extra) = @_;
    open my $in, '<', repo_root() . '/conf/sarkd.env' or die $!;
    open my $out, '>', $ENV_FILE or die $!;
    print $out grep { !/^(LOG_LEVEL|ENABLE_PROFILING|OPA_TIMEOUT_MS)=/ } <$in>;
    print $out $extra;
    close $out;
}

sub signal_and_wait {
    my ($sig, $msg) = @_;
    my $mark = sarkd_log_mark();
    my ($pid) = stack('pid', 'sarkd') =~ /(\d+)/;
    kill $sig, $pid;
    my @l;
    poll_until(5, sub { @l = sarkd_log_since($mark, $msg); @l });
    return $l[0];
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config());
    $block->set_value(config => "    location = /live { sark_api health_live; }\n");
});

run_tests();

__DATA__

=== TEST 1: SIGUSR1 logs the status; SIGHUP applies LOG_LEVEL and ENABLE_PROFILING, names what needs a restart, and refuses a bad value
--- init
main::write_env("LOG_LEVEL=info\nENABLE_PROFILING=false\nOPA_TIMEOUT_MS=1000\n");
{
    local $ENV{SARKD_ENV_FILE} = $main::ENV_FILE;
    stack('restart', 'sarkd');
}
my $st = main::signal_and_wait('USR1', 'status');
ok($st && ref $st->{status}{dependencies}{opa}, 'SIGUSR1: the status, with the dependencies');
ok($st && defined $st->{status}{audit}{queued_events}, 'SIGUSR1: and the audit queue');

main::write_env("LOG_LEVEL=debug\nENABLE_PROFILING=true\nOPA_TIMEOUT_MS=1500\n");
my $r = main::signal_and_wait('HUP', 'settings reloaded');
is($r->{log_level} // '', 'debug', 'SIGHUP: LOG_LEVEL applied');
is($r->{enable_profiling} ? 'true' : 'false', 'true', 'SIGHUP: ENABLE_PROFILING applied');
is($r->{need_restart} // '', 'OPA_TIMEOUT_MS', 'SIGHUP: OPA_TIMEOUT_MS named as needing a restart');

main::write_env("LOG_LEVEL=loud\n");
$r = main::signal_and_wait('HUP', 'settings not reloaded');
like($r->{error} // '', qr/LOG_LEVEL/, 'a bad value: nothing changes, the error names it');
ok(kill(0, (stack('pid', 'sarkd') =~ /(\d+)/)[0]), 'sarkd is still running');
stack('restart', 'sarkd');
--- request
GET /live
--- error_code: 200



=== TEST 2: under a Type=notify unit: READY=1 once it listens and OPA has answered, STOPPING=1 when it drains
--- init
require IO::Socket::UNIX;
require IO::Select;
my $path = html_dir() . '/../notify.sock';
unlink $path;
my $sock = IO::Socket::UNIX->new(Type => Socket::SOCK_DGRAM(), Local => $path) or die "$path: $!";
my $recv = sub {
    my $msg = '';
    $sock->recv($msg, 256) if IO::Select->new($sock)->can_read(10);
    return $msg;
};
{
    local $ENV{NOTIFY_SOCKET} = $path;
    stack('restart', 'sarkd');
}
is($recv->(), 'READY=1', 'READY=1 once it is ready');
stack('stop', 'sarkd');
is($recv->(), 'STOPPING=1', 'STOPPING=1 when it drains');
stack('start', 'sarkd');
unlink $path;
--- request
GET /live
--- error_code: 200
