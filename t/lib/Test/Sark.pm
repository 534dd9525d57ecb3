package Test::Sark;

# Runs t/*.t files written in the Test::Nginx::Socket block format against
# a private nginx. Built on Test::Base; see t/README for the supported
# sections and the environment it reads.

use strict;
use warnings;

use Test::Base;
use Test::More ();
use Exporter ();
use Cwd ();
use File::Basename ();
use File::Path ();
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX ();
use Socket ();
use Time::HiRes ();

use Test::Sark::Util qw(jwt stack repo_root dev_env sark_http_config);

our @ISA = ('Exporter');

my @base_exports = grep { !/^\$/ } @Test::Base::EXPORT;

our @EXPORT = (@base_exports, qw(
    run_tests repeat_each no_shuffle log_level workers master_on master_off
    no_module no_root_location no_long_string env_to_nginx add_block_preprocessor
    server_port html_dir timeout bail_out
    jwt stack sark_http_config
));

# ------------------------------------------------------------- configuration

my $Root    = repo_root();
my $RunDir  = abs_dir($ENV{SARK_RUN_DIR} // "$Root/run/test");
my $Prefix  = "$RunDir/t/nginx";
my $NginxBin = $ENV{TEST_NGINX_BINARY} // 'nginx';
my $Module  = $ENV{SARK_MODULE} // "$Root/build/ngx_http_sark_module.so";

$ENV{TEST_NGINX_SERVER_PORT}  //= 18000;
$ENV{TEST_NGINX_SARKD_SOCKET} //= "$RunDir/sarkd.sock";
$ENV{TEST_NGINX_JWT_SECRET}   //= dev_env('SARK_JWT_SECRET')   // '';
$ENV{TEST_NGINX_JWT_ISSUER}   //= dev_env('SARK_JWT_ISSUER')   // '';
$ENV{TEST_NGINX_JWT_AUDIENCE} //= dev_env('SARK_JWT_AUDIENCE') // '';
$ENV{TEST_NGINX_HTML_DIR}     //= "$Prefix/html";
$ENV{TEST_NGINX_REPO}         //= $Root;

my $Port = $ENV{TEST_NGINX_SERVER_PORT};

# Run as root, nginx workers are "nobody".  When the checkout sits below a
# directory others cannot enter (e.g. /root), they could not reach the
# sarkd socket: the workers then keep root's identity, and we say so.
my $WorkersAsRoot = ($> == 0 && !others_can_reach($RunDir));
Test::More::diag("note: $RunDir is not reachable by other users; "
                 . "test nginx workers run as root")
    if $WorkersAsRoot;

sub others_can_reach {
    my ($dir) = @_;
    my @parts = grep { length } split m{/}, $dir;
    my $path = '';
    for my $p (@parts) {
        $path .= "/$p";
        my @st = stat $path or return 1;   # not created yet: the part
                                           # above decided it
        return 0 unless ($st[2] & 01);
    }
    return 1;
}

my $RepeatEach     = 1;
my $LogLevel       = $ENV{TEST_NGINX_LOG_LEVEL} || 'info';
my $Workers        = 1;
my $UseModule      = !$ENV{SARK_NO_MODULE};
my $RootLocation   = 1;
my $DefaultTimeout = $ENV{TEST_NGINX_TIMEOUT} // 10;
my @EnvToNginx;
my @Preprocessors;

my $OwnerPid = $$;
my $TcpServerPid;      # mock server of the running block
my $NginxPid;          # master of the nginx we started
my $NginxConf;         # the configuration it runs

sub abs_dir {
    my ($d) = @_;
    return $d =~ m{^/} ? $d : Cwd::getcwd() . "/$d";
}

# ---------------------------------------------------------------- exports

sub import {
    my ($class, @args) = @_;
    if (@args) {
        Test::More::plan(@args);
    }
    Test::Base::filters_delay(1);
    for my $name (qw(jwt stack)) {
        no strict 'refs';
        *{"Test::Base::Filter::$name"} = \&{"Test::Sark::Util::$name"};
    }
    $class->export_to_level(1, $class);
}

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub log_level (@)          { $LogLevel = shift if @_; return $LogLevel }
sub workers (@)            { $Workers = shift if @_; return $Workers }
sub master_on ()          { }
sub master_off ()         { }
sub no_shuffle ()         { }
sub no_long_string ()     { }
sub no_module ()          { $UseModule = 0 }
sub no_root_location ()   { $RootLocation = 0 }
sub env_to_nginx (@)       { push @EnvToNginx, @_ }
sub add_block_preprocessor (&) { push @Preprocessors, @_ }
sub server_port ()        { $Port }
sub html_dir ()           { "$Prefix/html" }
sub timeout (@)            { $DefaultTimeout = shift if @_; return $DefaultTimeout }
sub bail_out (@)           { stop_nginx(); Test::More::BAIL_OUT(@_) }

# ---------------------------------------------------------------- utilities

sub expand_env {
    my ($s) = @_;
    return $s if !defined $s || ref $s;
    $s =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        defined $ENV{$1} ? $ENV{$1} : bail_out("no environment variable $1 defined")
    }ge;
    return $s;
}

sub parse_time {
    my ($t) = @_;
    return undef unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^(\d+(?:\.\d*)?)ms$/;
    return $1 if $t =~ /^(\d+(?:\.\d*)?)s?$/;
    bail_out("bad time value '$t'");
}

# pattern list of an error_log-like section: string (one pattern per line),
# Regexp, or array of strings and Regexps
sub patterns {
    my ($v) = @_;
    return () unless defined $v;
    return ($v) if ref $v eq 'Regexp';
    return grep { defined } @$v if ref $v eq 'ARRAY';
    my $s = expand_env($v);
    chomp $s;
    return grep { length } split /\n+/, $s;
}

# (name, value) pairs of a response_headers-like section; value undef = "!Name"
sub header_specs {
    my ($v) = @_;
    return () unless defined $v;
    my (@out, %seen);
    for my $line (split /\n+/, expand_env($v)) {
        next if $line =~ /^\s*(#|$)/;
        my ($k, $val);
        if ($line =~ /^\s*!\s*(\S+?)\s*$/) {
            $k = $1;
        } else {
            ($k, $val) = split /\s*:\s*/, $line, 2;
            $k =~ s/^\s+//;
            $val = '' unless defined $val;
            $val =~ s/\s+$//;
        }
        next if $seen{lc $k}++;
        push @out, [$k, $val];
    }
    return @out;
}

sub tests_in_block {
    my ($b) = @_;
    my @pats = (patterns($b->error_log), patterns($b->no_error_log));
    my $n = @pats;
    return $n + 1 if defined $b->must_die;
    unless (defined $b->ignore_response) {
        $n += 1;    # status code
        $n += 1 if defined $b->response_body;
        $n += 1 if defined $b->response_body_like;
        $n += 1 if defined $b->response_body_unlike;
        if (defined $b->response_headers) {
            $n += () = header_specs($b->response_headers);
        } elsif (defined $b->response_headers_like) {
            $n += () = header_specs($b->response_headers_like);
        }
    }
    $n += 1 if defined $b->tcp_query;
    $n += 1 if defined $b->tcp_query_len;
    return $n;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

sub error_log_file { "$Prefix/logs/error.log" }

sub error_log_size { -s error_log_file() || 0 }

sub error_log_since {
    my ($off) = @_;
    open my $fh, '<', error_log_file() or return '';
    seek $fh, $off, 0;
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

# ---------------------------------------------------------------- nginx

sub alive {
    my ($pid) = @_;
    return 0 unless $pid && -e "/proc/$pid";
    my $stat = slurp("/proc/$pid/stat");
    return $stat !~ /^\d+ \(.*\) Z /s;
}

sub children_of {
    my ($pid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = slurp($stat);
        push @kids, $1 if $s =~ /^(\d+) \(.*\) \S (\d+) /s && $2 == $pid;
    }
    return @kids;
}

sub wait_gone {
    my ($secs, @pids) = @_;
    my $deadline = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $deadline) {
        return 1 unless grep { alive($_) } @pids;
        waitpid(-1, POSIX::WNOHANG());
        Time::HiRes::sleep(0.01);
    }
    return !grep { alive($_) } @pids;
}

sub stop_nginx {
    return unless $$ == $OwnerPid;
    my $pid = $NginxPid;
    if (!$pid) {
        # an nginx left behind by an earlier run of the harness
        my $p = slurp("$Prefix/logs/nginx.pid");
        ($pid) = $p =~ /(\d+)/;
        return unless $pid && alive($pid) && slurp("/proc/$pid/comm") =~ /^nginx/;
    }
    my @kids = children_of($pid);
    kill 'QUIT', $pid;
    unless (wait_gone(10, $pid, @kids)) {
        Test::More::diag("nginx $pid did not exit after SIGQUIT; killing it");
        kill 'KILL', $pid, @kids, children_of($pid);
        wait_gone(5, $pid, @kids);
    }
    unlink "$Prefix/logs/nginx.pid";
    undef $NginxPid;
    undef $NginxConf;
}

sub render_config {
    my ($b) = @_;
    my $main = expand_env($b->main_config // '');
    my $http = expand_env($b->http_config // '');
    my $conf = expand_env($b->config // '');
    my $workers = $b->workers // $Workers;
    $workers =~ s/\s+//g;
    my $env = join '', map { "env $_;\n" } @EnvToNginx;
    $env .= "user root;\n" if $WorkersAsRoot && ($main !~ /^\s*user\s/m);
    my $load = '';
    if ($UseModule) {
        my @mods = $ENV{TEST_NGINX_LOAD_MODULES}
                 ? split(' ', $ENV{TEST_NGINX_LOAD_MODULES}) : ($Module);
        $load = join '', map { "load_module $_;\n" } @mods;
    }
    my $root = $RootLocation
        ? "        location / {\n            root $Prefix/html;\n            index index.html index.htm;\n        }\n"
        : '';

    return <<"CONF";
${load}${env}$main
worker_processes $workers;
daemon on;
master_process on;
error_log $Prefix/logs/error.log $LogLevel;
pid $Prefix/logs/nginx.pid;

events {
    accept_mutex off;
    worker_connections 1024;
}

http {
    access_log $Prefix/logs/access.log;
    default_type text/plain;
    keepalive_timeout 68;

    client_body_temp_path $Prefix/tmp/body;
    proxy_temp_path       $Prefix/tmp/proxy;
    fastcgi_temp_path     $Prefix/tmp/fastcgi;
    uwsgi_temp_path       $Prefix/tmp/uwsgi;
    scgi_temp_path        $Prefix/tmp/scgi;

$http
    server {
        listen 127.0.0.1:$Port;
        server_name localhost;
        client_max_body_size 30M;

$conf
$root    }
}
CONF
}

sub write_file {
    my ($path, $data) = @_;
    File::Path::make_path(File::Basename::dirname($path));
    open my $fh, '>', $path or bail_out("cannot write $path: $!");
    print $fh $data;
    close $fh;
}

# run CMD..., return (exit status, combined output)
sub run_cmd {
    my @cmd = @_;
    my $out = '';
    my $pid = open(my $fh, '-|') // bail_out("fork: $!");
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or do { print "cannot run $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    return ($?, $out);
}

sub nginx_cmd {
    my ($conf_name, @extra) = @_;
    return ($NginxBin, '-p', "$Prefix/", '-c', "conf/$conf_name",
            '-e', "$Prefix/logs/error.log", @extra);
}

sub prepare_prefix {
    File::Path::make_path(map { "$Prefix/$_" } qw(conf logs tmp html));
    chmod 0755, "$Prefix/html";
}

sub port_open {
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $Port,
                                 Proto => 'tcp', Timeout => 1) ? 1 : 0;
}

# start nginx with CONF unless it already runs it; returns error text or undef
sub ensure_nginx {
    my ($conf) = @_;
    if ($NginxPid && alive($NginxPid) && defined $NginxConf && $NginxConf eq $conf) {
        return undef;
    }
    stop_nginx();
    prepare_prefix();
    write_file("$Prefix/conf/nginx.conf", $conf);

    if (port_open()) {
        return "port 127.0.0.1:$Port is already in use by another process";
    }
    my ($st, $out) = run_cmd(nginx_cmd('nginx.conf'));
    if ($st != 0) {
        return "nginx failed to start (exit " . ($st >> 8) . "):\n$out";
    }
    my $deadline = Time::HiRes::time() + 10;
    my $pid;
    while (Time::HiRes::time() < $deadline) {
        ($pid) = slurp("$Prefix/logs/nginx.pid") =~ /(\d+)/;
        last if $pid && port_open();
        Time::HiRes::sleep(0.01);
    }
    return "nginx did not come up on 127.0.0.1:$Port within 10 s\n$out" unless $pid && alive($pid);
    $NginxPid  = $pid;
    $NginxConf = $conf;
    return undef;
}

sub write_user_files {
    my ($b) = @_;
    my $files = $b->user_files;
    return unless defined $files;
    if (ref $files eq 'ARRAY') {
        write_file("$Prefix/html/$_->[0]", $_->[1]) for @$files;
        return;
    }
    for my $part (split /^>>> /m, $files) {
        next unless length $part;
        my ($name, $body) = split /\n/, $part, 2;
        $name =~ s/\s+$//;
        write_file("$Prefix/html/$name", $body // '');
    }
}

# ---------------------------------------------------------------- requests

sub more_headers {
    my ($b) = @_;
    my $in = expand_env($b->more_headers // '');
    my $out = '';
    for my $line (split /\n+/, $in) {
        next if $line =~ /^\s*#/ || $line !~ /\S/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $out .= "$k: " . ($v // '') . "\r\n";
    }
    return $out;
}

sub build_request {
    my ($b) = @_;
    if (defined $b->raw_request) {
        my $raw = $b->raw_request;
        return ref $raw eq 'ARRAY' ? join('', @$raw) : expand_env($raw);
    }
    my $req = expand_env($b->request);
    bail_out($b->name . " - no --- request section") unless defined $req;
    1 while $req =~ s/^\s*#[^\n]*\n//s || $req =~ s/^\s+//s;
    my ($first, $body) = split /\n/, $req, 2;
    my ($method, $uri, $ver) = split ' ', $first;
    $uri //= '/';
    $ver //= 'HTTP/1.1';
    $body //= '';

    my $hdr = more_headers($b);
    my $head = '';
    $head .= "Host: localhost\r\n"  unless $hdr =~ /^Host:/mi;
    $head .= "Connection: close\r\n" unless $hdr =~ /^Connection/mi;
    $head .= $hdr;
    if ($body ne '' && $hdr !~ /^Transfer-Encoding:\s*chunked/mi && $hdr !~ /^Content-Length:/mi) {
        $body =~ s/^\s+|\s+$//gs;
        $head .= "Content-Length: " . length($body) . "\r\n";
    }
    return "$method $uri $ver\r\n$head\r\n$body";
}

# send BYTES, read until the peer closes; returns (response bytes, error)
sub send_request {
    my ($bytes, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $Port,
                                     Proto => 'tcp', Timeout => $timeout)
        or return ('', "cannot connect to 127.0.0.1:$Port: $!");
    binmode $sock;
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my $off = 0;
    while ($off < length $bytes) {
        my $left = $deadline - Time::HiRes::time();
        return ('', "timed out after ${timeout}s sending the request") if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite $sock, $bytes, length($bytes) - $off, $off;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            last;    # peer closed early; read what it answered
        }
        $off += $n;
    }
    my $resp = '';
    while (1) {
        my $left = $deadline - Time::HiRes::time();
        return ($resp, "timed out after ${timeout}s reading the response") if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $sock, my $buf, 65536;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            return ($resp, "read error: $!");
        }
        last if $n == 0;
        $resp .= $buf;
    }
    close $sock;
    return ($resp, undef);
}

sub dechunk {
    my ($s) = @_;
    my $out = '';
    while ($s =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $len = hex $1;
        return $out if $len == 0;
        $out .= substr($s, 0, $len, '');
        $s =~ s/^\r\n//;
    }
    return $out;
}

# -> { status, headers => { lc name => [values] }, body }
sub parse_response {
    my ($raw, $method) = @_;
    my %r = (status => '', headers => {}, body => '');
    my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
    return \%r unless defined $head && $head =~ m{^HTTP/\d\.\d\s+(\d{3})};
    $r{status} = $1;
    my @lines = split /\r?\n/, $head;
    shift @lines;
    for my $line (@lines) {
        my ($k, $v) = split /:\s*/, $line, 2;
        push @{ $r{headers}{lc $k} }, $v // '';
    }
    $body //= '';
    if ($method eq 'HEAD') {
        $body = '';
    } elsif (grep { /chunked/i } @{ $r{headers}{'transfer-encoding'} || [] }) {
        $body = dechunk($body);
    } elsif (my ($cl) = @{ $r{headers}{'content-length'} || [] }) {
        $body = substr($body, 0, $cl) if $cl =~ /^\d+$/;
    }
    $r{body} = $body;
    return \%r;
}

sub header_value {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

# ---------------------------------------------------------------- mock server

sub start_tcp_server {
    my ($b) = @_;
    my $target = expand_env($b->tcp_listen);
    $target =~ s/^\s+|\s+$//g;
    my $sock;
    if ($target =~ /^\d+$/) {
        $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $target,
                                      Proto => 'tcp', ReuseAddr => 1, Listen => 5);
    } else {
        unlink $target;
        $sock = IO::Socket::UNIX->new(Local => $target, Type => Socket::SOCK_STREAM(), Listen => 5);
        chmod 0666, $target if $sock;
    }
    bail_out($b->name . " - cannot listen on $target: $!") unless $sock;

    my $query_file = "$Prefix/tcp_query.$$";
    unlink $query_file;
    my $pid = fork // bail_out("fork: $!");
    if ($pid) {
        close $sock;
        $TcpServerPid = $pid;
        return { pid => $pid, file => $query_file, target => $target };
    }

    # child: one connection, read the query, send the reply
    Test::More->builder->no_ending(1);
    my $c = $sock->accept or POSIX::_exit(1);
    my $want = $b->tcp_query_len // (defined $b->tcp_query ? length $b->tcp_query : undef);
    my $buf = '';
    while (1) {
        my $n = sysread $c, my $chunk, 65536;
        last unless $n;
        $buf .= $chunk;
        if (open my $fh, '>', $query_file) { print $fh $buf; close $fh }
        last if !defined $want || length $buf >= $want;
    }
    if (my $d = parse_time($b->tcp_reply_delay)) { Time::HiRes::sleep($d) }
    my $reply = $b->tcp_reply;
    $reply = $reply->($buf) if ref $reply eq 'CODE';
    for my $r (ref $reply eq 'ARRAY' ? @$reply : defined $reply ? ($reply) : ()) {
        syswrite $c, $r;
    }
    sleep 1000 while defined $b->tcp_no_close;
    close $c;
    POSIX::_exit(0);
}

sub stop_tcp_server {
    my ($srv) = @_;
    return unless $srv;
    kill 'KILL', $srv->{pid};
    waitpid $srv->{pid}, 0;
    undef $TcpServerPid;
    unlink $srv->{target} unless $srv->{target} =~ /^\d+$/;
}

sub check_tcp_server {
    my ($b, $srv) = @_;
    my $name = $b->name;
    return unless $srv;
    Time::HiRes::sleep(0.02);
    my $got = slurp($srv->{file});
    unlink $srv->{file};
    if (defined $b->tcp_query_len) {
        Test::More::is(length $got, $b->tcp_query_len, "$name - tcp_query_len ok");
    }
    if (defined $b->tcp_query) {
        Test::Base::is($got, $b->tcp_query, "$name - tcp_query ok");
    }
}

# ---------------------------------------------------------------- checks

sub check_error_log {
    my ($b, $log, $extra) = @_;
    my $name = $b->name;
    my @want = patterns($b->error_log);
    my @lines = split /\n/, $log;
    push @lines, split /\n/, $extra if defined $extra;
    for my $p (@want) {
        my $hit = grep { ref $p ? $_ =~ $p : index($_, $p) >= 0 } @lines;
        Test::More::ok($hit, "$name - pattern \"$p\" matches a line in error.log")
            or Test::More::diag("error.log during this test:\n" . tail_lines($log, 30));
    }
    for my $p (patterns($b->no_error_log)) {
        my ($line) = grep { ref $p ? $_ =~ $p : index($_, $p) >= 0 } @lines;
        Test::More::ok(!defined $line, "$name - pattern \"$p\" does not match a line in error.log")
            or Test::More::diag("matched: $line");
    }
    my $expects_alert = grep { !ref $_ && /\[(alert|crit|emerg)/ } @want;
    unless ($expects_alert || defined $b->must_die) {
        for my $line (grep { /\[(alert|crit|emerg)\]/ } @lines) {
            Test::More::diag("WARNING: $name - $line");
        }
    }
}

sub tail_lines {
    my ($s, $n) = @_;
    my @l = split /\n/, $s;
    splice @l, 0, @l - $n if @l > $n;
    return join "\n", @l;
}

# wait until every error_log pattern shows up (nginx may log after responding)
sub settle_error_log {
    my ($b, $off) = @_;
    my @want = patterns($b->error_log);
    my $deadline = Time::HiRes::time() + (@want ? 1 : 0.03);
    my $log;
    while (1) {
        $log = error_log_since($off);
        my @lines = split /\n/, $log;
        my $missing = grep { my $p = $_; !grep { ref $p ? $_ =~ $p : index($_, $p) >= 0 } @lines } @want;
        last if (@want && !$missing) || Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
    return $log;
}

sub run_request_checks {
    my ($b, $res, $err) = @_;
    my $name = $b->name;
    return if defined $b->ignore_response;

    my $code = $b->error_code // 200;
    $code =~ s/^\s+|\s+$//g;
    Test::More::is($res->{status}, $code, "$name - status code ok")
        or ($err && Test::More::diag("$name - $err"));

    if (defined $b->response_headers) {
        Test::More::diag("$name - response_headers_like is ignored when response_headers is given")
            if defined $b->response_headers_like;
        for my $h (header_specs($b->response_headers)) {
            my ($k, $v) = @$h;
            if (!defined $v) {
                Test::More::ok(!defined header_value($res, $k), "$name - header $k not present in the raw headers");
            } else {
                Test::More::is(header_value($res, $k) // '', $v, "$name - header $k ok");
            }
        }
    } elsif (defined $b->response_headers_like) {
        for my $h (header_specs($b->response_headers_like)) {
            my ($k, $v) = @$h;
            Test::More::like(header_value($res, $k) // '', qr/^$v$/, "$name - header $k like ok");
        }
    }

    if (defined $b->response_body) {
        Test::Base::is($res->{body}, expand_env($b->response_body), "$name - response_body - response is expected");
    }
    if (defined $b->response_body_like) {
        my $re = $b->response_body_like;
        $re = qr/$re/s unless ref $re eq 'Regexp';
        Test::More::like($res->{body}, $re, "$name - response_body_like - response is expected");
    }
    if (defined $b->response_body_unlike) {
        my $re = $b->response_body_unlike;
        $re = qr/$re/s unless ref $re eq 'Regexp';
        Test::More::unlike($res->{body}, $re, "$name - response_body_unlike - response is expected");
    }
}

sub fail_block {
    my ($b, $why) = @_;
    my $n = tests_in_block($b) * $RepeatEach;
    Test::More::diag($b->name . " - $why");
    Test::More::fail($b->name . " - nginx could not run this test") for 1 .. $n;
}

sub run_must_die {
    my ($b, $conf) = @_;
    my $name = $b->name;
    prepare_prefix();
    write_file("$Prefix/conf/must_die.conf", $conf);
    my $off = error_log_size();
    my ($st, $out) = run_cmd(nginx_cmd('must_die.conf', '-t'));
    my $want = $b->must_die;
    if (defined $want && $want =~ /^\s*(\d+)\s*$/) {
        Test::More::is($st >> 8, $1, "$name - die with the expected exit code");
    } else {
        Test::More::isnt($st, 0, "$name - die as expected")
            or Test::More::diag("nginx -t output:\n$out");
    }
    check_error_log($b, error_log_since($off), $out);
}

sub run_block {
    my ($b) = @_;
    $_->($b) for @Preprocessors;
    $b->run_filters unless $b->is_filtered;
    my $name = $b->name;
    my $conf = render_config($b);

    if (defined $b->must_die) {
        run_must_die($b, $conf) for 1 .. $RepeatEach;
        return;
    }

    my $off = error_log_size();
    write_user_files($b);
    if (my $err = ensure_nginx($conf)) {
        fail_block($b, $err);
        return;
    }

    if (defined(my $init = $b->init)) {
        my $ok = eval "package main; $init; 1";
        bail_out("$name - init failed: $@") unless $ok;
    }

    my $timeout = parse_time($b->timeout) // $DefaultTimeout;
    my $method = '';
    for my $i (1 .. $RepeatEach) {
        my $srv = defined $b->tcp_listen ? start_tcp_server($b) : undef;
        my $req = build_request($b);
        ($method) = $req =~ /^(\S+)/;
        my ($raw, $err) = send_request($req, $timeout);
        $err = undef if $err && defined $b->abort;
        my $res = parse_response($raw, $method // '');
        run_request_checks($b, $res, $err);
        if (my $w = parse_time($b->wait)) { Time::HiRes::sleep($w) }
        check_error_log($b, settle_error_log($b, $off));
        check_tcp_server($b, $srv);
        stop_tcp_server($srv);
    }
}

sub run_tests () {
    if (!$ENV{TEST_NGINX_LOAD_MODULES} && $UseModule && !-r $Module) {
        Test::More::BAIL_OUT("module $Module not found: build it with 'make' (or set SARK_MODULE)");
    }
    stop_nginx();    # an nginx left over from an interrupted run
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub {
            kill 'KILL', $TcpServerPid if $TcpServerPid;
            stop_nginx();
            exit 1;
        };
    }
    Test::Base::default_object()->_assert_plan;
    for my $b (Test::Base::blocks()) {
        run_block($b);
    }
    stop_nginx();
}

END {
    stop_nginx() if $$ == $OwnerPid;
}

1;
