package Test::Sark::Util;

# Functions for t/*.t files: signed test tokens and control of the dev stack.
# Usable with Test::Sark or with the real Test::Nginx::Socket.

use strict;
use warnings;

use Exporter 'import';
use Cwd ();
use File::Basename ();
use File::Path ();
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 ();

our @EXPORT = qw(jwt stack);
our @EXPORT_OK = qw(repo_root dev_env b64url pk_jwt sark_http_config
    nonce http_request authorize raw_request raw_exchange parse_raw_response split_responses
    concurrent_requests decision_is decode_json_or_undef
    poll_until l1_ready l2_ready opa_evals opa_revision opa_bundle
    redis_cli redis_publish redis_keys pg_query pg_value audit_rows_for sarkd_log_mark sarkd_log_since
    metrics_samples);

my $Root = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../../..');

sub repo_root { $Root }

# dev_env NAME: the value of NAME in conf/dev.env (undef when absent)
sub dev_env {
    my ($name) = @_;
    my $file = $ENV{SARK_DEV_ENV} // "$Root/conf/dev.env";
    open my $fh, '<', $file or return undef;
    my $val;
    while (my $line = <$fh>) {
        next unless $line =~ /^\s*(?:export\s+)?\Q$name\E=(.*?)\s*$/;
        $val = $1;
        $val = $1 if $val =~ /^"(.*)"$/ || $val =~ /^'(.*)'$/;
    }
    return $val;
}

sub b64url {
    my $s = MIME::Base64::encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# pk_jwt(ALG, KEYFILE, %args): an RS256 or ES256 token signed with the PEM
# private key KEYFILE (by openssl; ES256 signatures become raw R||S).
# header => {...} adds header members (kid); other keys are claims over
# defaults for an admin of the test issuer and audience.
sub pk_jwt {
    my ($alg, $key, %args) = @_;
    my $hdr = delete $args{header} || {};
    my $json = JSON::PP->new->canonical;
    my $now = time;
    my %c = (sub => 'u-pk', email => 'pk@example.com', roles => ['admin'],
             iss => $ENV{TEST_NGINX_JWT_ISSUER},
             aud => $ENV{TEST_NGINX_JWT_AUDIENCE},
             iat => $now, exp => $now + 600, %args);
    my $input = b64url($json->encode({alg => $alg, typ => 'JWT', %$hdr}))
                . '.' . b64url($json->encode(\%c));
    require File::Temp;
    my $tmp = File::Temp->new;
    print $tmp $input;
    close $tmp;
    my $sig = `openssl dgst -sha256 -sign $key -binary ${\ $tmp->filename}`;
    die "openssl failed" if $? || !length $sig;
    if ($alg eq 'ES256') {
        my ($r, $s) = der_ecdsa($sig);
        $sig = $r . $s;
    }
    return "$input." . b64url($sig);
}

# the two integers of a DER ECDSA signature, 32 bytes each
sub der_ecdsa {
    my ($der) = @_;
    my @b = unpack 'C*', $der;
    my $i = 2;
    $i++ if $b[1] & 0x80;
    my @ints;
    for (1 .. 2) {
        die "bad DER" unless $b[$i] == 0x02;
        my $len = $b[$i + 1];
        my $v = pack 'C*', @b[$i + 2 .. $i + 1 + $len];
        $v =~ s/^\x00+//;
        push @ints, ("\x00" x (32 - length $v)) . $v;
        $i += 2 + $len;
    }
    return @ints;
}

my %OPTIONS = map { $_ => 1 } qw(expired nbf_future alg secret wrong_secret header ttl payload);

# jwt(%args): an HS256 token for the test secret ($TEST_NGINX_JWT_SECRET).
# Keys that are not options are claims; a claim given as undef is left out.
# Options:
#   expired => 1        exp one minute in the past
#   nbf_future => 1     nbf one hour in the future
#   ttl => SECONDS      lifetime (default 3600)
#   alg => 'none'       unsigned token (empty signature); other values only change the header
#   secret => S         sign with S; wrong_secret => 1 signs with a different secret
#   header => {...}     extra header fields
#   payload => STRING   raw payload instead of the JSON claims
sub jwt {
    my %args = @_;
    my %opt = map { $_ => delete $args{$_} } grep { $OPTIONS{$_} } keys %args;
    my $now = time;
    my $ttl = $opt{ttl} // 3600;

    my %claims = (
        sub   => '6f1c1e5a-3b1d-4c2e-9a57-0d1e2f3a4b5c',
        email => 'dev@example.com',
        roles => ['developer'],
        teams => [],
        type  => 'access',
        iat   => $now,
        exp   => $now + $ttl,
    );
    $claims{iss} = $ENV{TEST_NGINX_JWT_ISSUER}   if length($ENV{TEST_NGINX_JWT_ISSUER} // '');
    $claims{aud} = $ENV{TEST_NGINX_JWT_AUDIENCE} if length($ENV{TEST_NGINX_JWT_AUDIENCE} // '');
    if ($opt{expired}) {
        $claims{iat} = $now - 3660;
        $claims{exp} = $now - 60;
    }
    $claims{nbf} = $now + 3600 if $opt{nbf_future};
    while (my ($k, $v) = each %args) {
        if (defined $v) { $claims{$k} = $v } else { delete $claims{$k} }
    }

    my $alg = $opt{alg} // 'HS256';
    my %header = (alg => $alg, typ => 'JWT', %{ $opt{header} || {} });
    my $json = JSON::PP->new->canonical;
    my $payload = $opt{payload} // $json->encode(\%claims);
    my $input = b64url($json->encode(\%header)) . '.' . b64url($payload);

    return "$input." if lc $alg eq 'none';

    my $secret = $opt{secret} // $ENV{TEST_NGINX_JWT_SECRET};
    die "jwt: no secret (set TEST_NGINX_JWT_SECRET)\n" unless defined $secret && length $secret;
    $secret .= '-wrong' if $opt{wrong_secret};
    return "$input." . b64url(Digest::SHA::hmac_sha256($input, $secret));
}

# sark_http_config(LINES...): the http-level directives most suites share
# (sarkd's socket, the JWT key, issuer and audience, a 1m L1 zone), then
# LINES, each indented and ended with ";"
sub sark_http_config {
    my @lines = ("sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET}",
                 "sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET}",
                 "sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER}",
                 "sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE}",
                 'sark_cache_zone sark_l1 1m', @_);
    return join '', map { "    $_;\n" } @lines;
}

# stack(COMMAND, COMPONENT...): run scripts/stack with the caller's
# environment; dies with its output when it fails
sub stack {
    my @args = @_;
    my $out = '';
    my $pid = open(my $fh, '-|') // die "stack: fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec "$Root/scripts/stack", @args or do { print "cannot run scripts/stack: $!\n"; exit 127 };
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    die "scripts/stack @args failed:\n$out" if $?;
    return $out;
}

# ------------------------------------------------------------ requests
#
# The functions below talk to the running test stack directly, for suites
# that need more than one request per block (caches, counters, concurrency).

my $Json = JSON::PP->new->canonical->allow_nonref;

my $NonceSeq = 0;

# nonce(): a string unique to this run of the suite (and to each call), for
# cache keys no earlier run can have left in Redis
sub nonce {
    return sprintf '%x%x%x', time, $$, $NonceSeq++;
}

sub decode_json_or_undef {
    my ($s) = @_;
    return undef unless defined $s && $s =~ /^\s*[\[{]/;
    my $v = eval { $Json->decode($s) };
    return $v;
}

# http_request(METHOD, URL, %opt): one request; a URL that is a path goes to
# the test nginx (127.0.0.1:$TEST_NGINX_SERVER_PORT, or port => N).
#   headers => {...}   extra request headers
#   token => JWT       Authorization: Bearer JWT
#   body => STRING     request body; a reference is sent as JSON
#   timeout => S       [10]
# Returns { status, headers => { lc name => value }, body, json } where json
# is the decoded body when it is JSON (else undef).  Connection failures are
# status 599, as HTTP::Tiny reports them.
sub http_request {
    my ($method, $url, %opt) = @_;
    if ($url =~ m{^/}) {
        my $port = $opt{port} // $ENV{TEST_NGINX_SERVER_PORT} // 18000;
        $url = "http://127.0.0.1:$port$url";
    }
    my %h = %{ $opt{headers} || {} };
    $h{Authorization} = "Bearer $opt{token}" if defined $opt{token};
    my %args = (headers => \%h);
    if (defined $opt{body}) {
        $args{content} = ref $opt{body} ? $Json->encode($opt{body}) : $opt{body};
    }
    require HTTP::Tiny;
    my $res = HTTP::Tiny->new(timeout => $opt{timeout} // 10, keep_alive => 0)
                        ->request($method, $url, \%args);
    my %hdr = map { lc($_) => (ref $res->{headers}{$_} ? join(', ', @{ $res->{headers}{$_} })
                                                       : $res->{headers}{$_}) }
              keys %{ $res->{headers} || {} };
    return { status => $res->{status}, headers => \%hdr,
             body => $res->{content} // '',
             json => decode_json_or_undef($res->{content}) };
}

# authorize(BODY, %opt): POST BODY (string, or reference sent as JSON) to the
# decision API, path => [/api/v1/gateway/authorize]; other options as for
# http_request
sub authorize {
    my ($body, %opt) = @_;
    my $path = delete $opt{path} // '/api/v1/gateway/authorize';
    return http_request('POST', $path, body => $body, %opt);
}

# raw_request(METHOD, PATH, %opt): the bytes of an HTTP/1.1 request to the
# test nginx (Connection: close), with body => and token => as above
sub raw_request {
    my ($method, $path, %opt) = @_;
    my $body = defined $opt{body} ? (ref $opt{body} ? $Json->encode($opt{body}) : $opt{body}) : '';
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    $req .= "Authorization: Bearer $opt{token}\r\n" if defined $opt{token};
    $req .= "Content-Length: " . length($body) . "\r\n" if length $body || $method eq 'POST';
    return "$req\r\n$body";
}

sub parse_raw_response {
    my ($raw) = @_;
    my %r = (status => 599, headers => {}, body => '', json => undef);
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return \%r unless defined $head && $head =~ m{^HTTP/\d\.\d (\d{3})};
    $r{status} = $1;
    for my $line (split /\r\n/, $head) {
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        $r{headers}{lc $k} = $v;
    }
    $r{body} = $body // '';
    $r{json} = decode_json_or_undef($r{body});
    return \%r;
}

# raw_exchange(PARTS, %opt): sends each of PARTS (byte strings) on one
# connection to the test nginx, pause => S seconds apart [0.2], then reads
# until nginx closes it (timeout => S [10]).  Returns everything read.
sub raw_exchange {
    my ($parts, %opt) = @_;
    require IO::Socket::INET;
    require IO::Select;
    require Time::HiRes;
    my $port = $opt{port} // $ENV{TEST_NGINX_SERVER_PORT} // 18000;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "raw_exchange: connect 127.0.0.1:$port: $!\n";
    binmode $s;
    for my $i (0 .. $#$parts) {
        Time::HiRes::sleep($opt{pause} // 0.2) if $i;
        syswrite($s, $parts->[$i]) == length $parts->[$i] or die "raw_exchange: short write\n";
    }
    my ($all, $sel) = ('', IO::Select->new($s));
    my $deadline = Time::HiRes::time() + ($opt{timeout} // 10);
    while (Time::HiRes::time() < $deadline && $sel->can_read($deadline - Time::HiRes::time())) {
        my $got = sysread $s, my $chunk, 65536;
        last unless $got;
        $all .= $chunk;
    }
    close $s;
    return $all;
}

# split_responses(RAW): the HTTP/1.1 responses in RAW (each with a
# Content-Length), shaped as http_request's, in order
sub split_responses {
    my ($raw) = @_;
    my @out;
    while ($raw =~ /\A(HTTP\/1\.1 .*?\r\n\r\n)/s) {
        my $head = $1;
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        $len //= 0;
        push @out, parse_raw_response(substr($raw, 0, length($head) + $len));
        substr($raw, 0, length($head) + $len) = '';
    }
    return @out;
}

# concurrent_requests(N, BYTES, %opt): opens N connections to the test
# nginx (port => P), sends all of BYTES but the last byte on each, then the
# last byte on all of them in one go, so the N requests reach nginx in the
# same instant; reads every answer (timeout => S [10]).  Returns the list
# of responses shaped as http_request's.  BYTES may be a reference to a
# list of N requests, one per connection.
sub concurrent_requests {
    my ($n, $bytes, %opt) = @_;
    require IO::Socket::INET;
    require IO::Select;
    require Time::HiRes;
    my $port = $opt{port} // $ENV{TEST_NGINX_SERVER_PORT} // 18000;
    my @reqs = ref $bytes ? @$bytes : ($bytes) x $n;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 5)
            or die "concurrent_requests: connect 127.0.0.1:$port: $!\n";
        binmode $s;
        push @socks, $s;
    }
    for my $i (0 .. $#socks) {
        my $head = substr $reqs[$i], 0, -1;
        syswrite($socks[$i], $head) == length $head or die "concurrent_requests: short write\n";
    }
    syswrite $socks[$_], substr($reqs[$_], -1) for 0 .. $#socks;

    my %buf = map { $_ => '' } 0 .. $#socks;
    my %open = map { fileno($socks[$_]) => $_ } 0 .. $#socks;
    my $sel = IO::Select->new(@socks);
    my $deadline = Time::HiRes::time() + ($opt{timeout} // 10);
    while ($sel->count && Time::HiRes::time() < $deadline) {
        for my $s ($sel->can_read($deadline - Time::HiRes::time())) {
            my $i = $open{fileno $s};
            my $got = sysread $s, my $chunk, 65536;
            if ($got) {
                $buf{$i} .= $chunk;
            } else {
                $sel->remove($s);
                close $s;
            }
        }
    }
    close $_ for $sel->handles;
    return map { parse_raw_response($buf{$_}) } 0 .. $#socks;
}

# decision_is(RESPONSE, {status, allow, cache, reason, code}, NAME): one
# test; the answer must have every field given (status defaults to 200;
# cache may be a Regexp, code is error.code of an error answer).  Says what
# differed when it fails.
sub decision_is {
    my ($res, $want, $name) = @_;
    require Test::More;
    my $tb = Test::More->builder;
    my @bad;
    my $j = $res->{json};
    my $status = $want->{status} // 200;
    push @bad, "status $res->{status}, expected $status" if $res->{status} ne $status;
    if (exists $want->{allow}) {
        my $al = ref $j eq 'HASH' && exists $j->{allow} ? ($j->{allow} ? 1 : 0) : 'none';
        push @bad, "allow $al, expected " . ($want->{allow} ? 1 : 0)
            if $al eq 'none' || $al != ($want->{allow} ? 1 : 0);
    }
    if (exists $want->{cache}) {
        my $c = ref $j eq 'HASH' ? ($j->{metadata}{cache} // 'none') : 'none';
        my $ok = ref $want->{cache} eq 'Regexp' ? $c =~ $want->{cache} : $c eq $want->{cache};
        push @bad, "cache $c, expected $want->{cache}" unless $ok;
    }
    if (exists $want->{reason}) {
        my $r = ref $j eq 'HASH' ? ($j->{reason} // 'none') : 'none';
        push @bad, "reason '$r', expected '$want->{reason}'" if $r ne $want->{reason};
    }
    if (exists $want->{code}) {
        my $c = ref $j eq 'HASH' ? ($j->{error}{code} // 'none') : 'none';
        push @bad, "error code $c, expected $want->{code}" if $c ne $want->{code};
    }
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = $tb->ok(!@bad, $name);
    $tb->diag(join('; ', @bad) . "\nbody: $res->{body}") unless $ok;
    return $ok;
}

# poll_until(SECONDS, CODE): calls CODE every 50 ms until it returns true or
# SECONDS have passed; returns CODE's last value.  Only for the windows the
# design has (revision poll, reconnect back-off, circuit breaker).
sub poll_until {
    my ($secs, $code) = @_;
    require Time::HiRes;
    my $deadline = Time::HiRes::time() + $secs;
    while (1) {
        my $v = $code->();
        return $v if $v || Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# l1_ready(%opt): waits (at most timeout => S [5]) until the nginx worker
# knows sarkd's policy revision, i.e. a warm-up decision is answered from
# L1 when asked twice; a worker learns the revision only after connecting
# to sarkd.  Each try uses a fresh subject ("warmup-<pid>-N"), so an entry
# that cannot be an L1 hit (decided within the skew window of an
# invalidation, e.g. the one sarkd makes when it starts) does not hold it
# up.  One OPA evaluation per try.  path, port as for authorize.  True
# when ready.
sub l1_ready {
    my (%opt) = @_;
    my $timeout = delete $opt{timeout} // 5;
    my $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
             . '"tool_name":"list_tables","parameters":{"warmup":true}}';
    my $i = 0;
    return poll_until($timeout, sub {
        $i++;
        my $token = jwt(sub => "warmup-$$-$i", email => 'warmup@example.com',
                        roles => ['analyst']);
        for (1 .. 2) {
            my $r = authorize($body, token => $token, %opt);
            return 1 if ref $r->{json} eq 'HASH' && ($r->{json}{metadata}{cache} // '') eq 'L1';
        }
        return 0;
    });
}

# l2_ready(%opt): waits (at most timeout => S [15]) until sarkd stores
# decisions in Redis again: fresh probe decisions (sub "l2probe-<pid>-N")
# are made until one of them shows up under its key.  Covers sarkd's Redis
# reconnect and circuit breaker (REDIS_CIRCUIT_BREAKER_TIMEOUT).  path,
# port as for authorize.  True when ready.
sub l2_ready {
    my (%opt) = @_;
    my $timeout = delete $opt{timeout} // 15;
    my $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
             . '"tool_name":"list_tables"}';
    my $i = 0;
    return poll_until($timeout, sub {
        $i++;
        authorize($body, token => jwt(sub => "l2probe-$$-$i", roles => ['analyst']), %opt);
        return scalar redis_keys("authz:l2probe-$$-*");
    });
}

# ------------------------------------------------------------ OPA

sub opa_url {
    my $port = $ENV{TEST_NGINX_OPA_PORT} or die "TEST_NGINX_OPA_PORT is not set\n";
    return "http://127.0.0.1:$port";
}

sub opa_eval_count {
    my $r = http_request('GET', opa_url() . '/metrics', timeout => 5);
    die "opa_evals: GET /metrics: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    my $n = 0;
    for my $line (split /\n/, $r->{body}) {
        next unless $line =~ /^http_request_duration_seconds_count\{(.*)\}\s+(\S+)$/;
        my ($labels, $v) = ($1, $2);
        $n += $v if $labels =~ /handler="v1\/data"/ && $labels =~ /method="post"/;
    }
    return $n;
}

# opa_evals(): how many policy evaluations OPA has served: the sum of
# http_request_duration_seconds_count{handler="v1/data",method="post"} over
# every status code, from OPA's /metrics ($TEST_NGINX_OPA_PORT).  OPA counts
# a request after its answer is written, so the value is read until two
# reads 50 ms apart agree (at most 2 s).  Restarting OPA resets it.
sub opa_evals {
    require Time::HiRes;
    my $deadline = Time::HiRes::time() + 2;
    my $last = opa_eval_count();
    while (1) {
        Time::HiRes::sleep(0.05);
        my $n = opa_eval_count();
        return $n if $n == $last || Time::HiRes::time() >= $deadline;
        $last = $n;
    }
}

# opa_revision(): the policy revision OPA serves now (its bundle's), or ''
sub opa_revision {
    my $r = http_request('GET', opa_url() . '/v1/data/sark_revision_probe?provenance=true',
                         timeout => 5);
    my $bundles = $r->{json} && $r->{json}{provenance} && $r->{json}{provenance}{bundles};
    return '' unless ref $bundles eq 'HASH' && keys %$bundles == 1;
    my ($b) = values %$bundles;
    return $b->{revision} // '';
}

# opa_bundle(PATH => CONTENT, ...): OPA serves policies/ with these files
# (paths inside the bundle) added or replaced, or removed where CONTENT is
# undef, as a new bundle (scripts/stack bundle); waits until OPA serves it
# and returns its revision.  opa_bundle() serves policies/ as they are.
sub opa_bundle {
    my %files = @_;
    my $run = $ENV{SARK_RUN_DIR} // "$Root/run/test";
    my $dir = "$run/opa/test-src";
    system('rm', '-rf', $dir) == 0 or die "opa_bundle: cannot remove $dir\n";
    system('cp', '-r', "$Root/policies", $dir) == 0 or die "opa_bundle: cannot copy policies\n";
    while (my ($path, $content) = each %files) {
        if (defined $content) {
            File::Path::make_path(File::Basename::dirname("$dir/$path"));
            open my $fh, '>', "$dir/$path" or die "opa_bundle: $dir/$path: $!\n";
            print $fh $content;
            close $fh;
        } else {
            unlink "$dir/$path" or die "opa_bundle: $dir/$path: $!\n";
        }
    }
    (my $rev = stack('bundle', $dir)) =~ s/\s+\z//;
    $rev =~ s/.*\n//s;
    poll_until(10, sub { opa_revision() eq $rev })
        or die "opa_bundle: OPA did not load revision $rev within 10 s\n";
    return $rev;
}

# ------------------------------------------------------------ Redis

# redis_cli(ARGS...): runs redis-cli against 127.0.0.1:$TEST_NGINX_REDIS_PORT
# and returns its output lines (list context) or text
sub redis_cli {
    my @args = @_;
    my $port = $ENV{TEST_NGINX_REDIS_PORT} or die "TEST_NGINX_REDIS_PORT is not set\n";
    my $pid = open(my $fh, '-|') // die "redis_cli: fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec 'redis-cli', '-h', '127.0.0.1', '-p', $port, @args
            or do { print "cannot run redis-cli: $!\n"; exit 127 };
    }
    my @out = <$fh>;
    close $fh;
    chomp @out;
    return wantarray ? @out : join("\n", @out);
}

# redis_publish(CHANNEL, MESSAGE, %opt): PUBLISH as a sarkd does, the
# message sealed with the stack's CACHE_L2_HMAC_KEY (daemon/cache/
# channel_seal.h); key => K seals with another key, for => CHANNEL2 seals
# it as for another channel, sealed => 0 sends it bare.  Returns the number
# of receivers.
sub redis_publish {
    my ($channel, $message, %opt) = @_;
    my $key = $opt{key} // dev_env('SARK_L2_HMAC_KEY');
    my $scope = 'channel ' . ($opt{for} // $channel);
    my $tag = Digest::SHA::hmac_sha256_hex("sark-gateway L2 value v1\0" . pack('N', length $scope)
                                           . $scope . $message, $key);
    my $text = ($opt{sealed} // 1) ? "sark1:$tag:$message" : $message;
    return scalar redis_cli('PUBLISH', $channel, $text);
}

# redis_keys(PATTERN): the keys matching PATTERN (SCAN MATCH), sorted; in
# scalar context their number
sub redis_keys {
    my ($pattern) = @_;
    my %seen;
    my @keys = sort grep { length && !$seen{$_}++ } redis_cli('--scan', '--pattern', $pattern);
    return wantarray ? @keys : scalar @keys;
}

# pg_query(SQL): runs SQL with psql on the test PostgreSQL (database sark);
# returns its rows as array references of column values (psql -tA, fields
# separated by tabs); dies with psql's message on an error
sub pg_query {
    my ($sql) = @_;
    my $port = $ENV{TEST_NGINX_PG_PORT} or die "TEST_NGINX_PG_PORT is not set\n";
    my $pid = open(my $fh, '-|') // die "pg_query: fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', $port,
             '-U', 'postgres', '-d', 'sark', '-tA', '-F', "\t", '-c', $sql
            or do { print "cannot run psql: $!\n"; exit 127 };
    }
    my @out = <$fh>;
    close $fh;
    die "pg_query: $sql\n@out" if $?;
    chomp @out;
    return map { [split /\t/, $_, -1] } grep { length } @out;
}

# pg_value(SQL): the first column of the first row
sub pg_value {
    my @rows = pg_query(@_);
    return @rows ? $rows[0][0] : undef;
}

# audit_rows_for(USER_ID): gateway_audit_events rows of that user as hashes
# (column => value, NULL as undef), oldest first
sub audit_rows_for {
    my ($user) = @_;
    (my $q = $user) =~ s/'/''/g;
    my @cols = qw(id event_type user_id agent_id server_name tool_name action
                  sensitivity_level decision reason cache_layer latency_us policy_revision
                  gateway_request_id client_ip metadata timestamp);
    my $sel = join ', ', map { $_ eq 'timestamp' ? 'extract(epoch from "timestamp")'
                              : 'coalesce(' . $_ . "::text, '<NULL>')" } @cols;
    my @rows;
    for my $r (pg_query("SELECT $sel FROM gateway_audit_events WHERE user_id = '$q' "
                        . 'ORDER BY "timestamp", id')) {
        my %h;
        @h{@cols} = map { $_ eq '<NULL>' ? undef : $_ } @$r;
        push @rows, \%h;
    }
    return @rows;
}

# metrics_samples(): GET /metrics from the test nginx, read by the
# reference Prometheus parser (t/lib/parse-metrics.py, with Debian's
# python3-prometheus-client); returns ({ "name{k=v,...}" => value }, the
# response).  Dies when the answer is not 200 or the parser refuses it.
sub metrics_samples {
    my $r = http_request('GET', '/metrics');
    die "GET /metrics: $r->{status}\n" unless $r->{status} == 200;
    require File::Temp;
    my $tmp = File::Temp->new;
    print $tmp $r->{body};
    close $tmp;
    my $out = `/usr/bin/python3 $Root/t/lib/parse-metrics.py < ${\ $tmp->filename} 2>&1`;
    die "the Prometheus parser refused /metrics: $out\n" if $?;
    my %s;
    for (split /\n/, $out) {
        my $x = $Json->decode($_);
        my $l = join ',', map { "$_=$x->{labels}{$_}" } sort keys %{ $x->{labels} };
        $s{"$x->{name}\{$l}"} = $x->{value};
    }
    return (\%s, $r);
}

# ------------------------------------------------------------ sarkd's log

sub sarkd_log_path {
    my $run = $ENV{SARK_SARKD_RUN_DIR} // $ENV{SARK_RUN_DIR} // "$Root/run/test";
    $run = Cwd::getcwd() . "/$run" unless $run =~ m{^/};
    return "$run/sarkd.log";
}

# sarkd_log_mark(): where sarkd's log ($SARK_RUN_DIR/sarkd.log) ends now
sub sarkd_log_mark {
    return -s sarkd_log_path() // 0;
}

# sarkd_log_since(MARK, MSG): the JSON lines sarkd logged after MARK,
# decoded (hash references), oldest first; only those whose msg is MSG
# when MSG is given
sub sarkd_log_since {
    my ($mark, $msg) = @_;
    open my $fh, '<', sarkd_log_path() or return ();
    seek $fh, $mark, 0;
    my @lines;
    while (my $line = <$fh>) {
        my $j = decode_json_or_undef($line);
        next unless ref $j eq 'HASH';
        next if defined $msg && ($j->{msg} // '') ne $msg;
        push @lines, $j;
    }
    close $fh;
    return @lines;
}

1;
