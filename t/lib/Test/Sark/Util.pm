package Test::Sark::Util;

# Functions for t/*.t files: signed test tokens and control of the dev stack.
# Usable with Test::Sark or with the real Test::Nginx::Socket.

use strict;
use warnings;

use Exporter 'import';
use Cwd ();
use File::Basename ();
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 ();

our @EXPORT = qw(jwt stack);
our @EXPORT_OK = qw(repo_root dev_env b64url);

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

1;
