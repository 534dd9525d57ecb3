# sark_jwt_jwks_file: tokens of an identity provider verified with its JWKS
# document as published (RS256 and ES256 keys chosen by "kid"), keys that
# are not ours skipped, broken documents refused by nginx -t, and a new
# document taken by nginx -s reload.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(pk_jwt authorize poll_until);
use JSON::PP ();
use File::Temp ();

repeat_each(1);
no_shuffle();

plan tests => 28;

our $keys = "$ENV{TEST_NGINX_REPO}/t/unit/keys";
our $jwks = "$ENV{TEST_NGINX_REPO}/t/unit/keys/jwks.json";
our $body = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}';

# a JWKS file in the test's directory holding the keys of jwks.json named
sub jwks_with {
    my ($path, @kids) = @_;
    open my $in, '<', $main::jwks or die $!;
    my $doc = JSON::PP->new->decode(do { local $/; <$in> });
    my %want = map { $_ => 1 } @kids;
    $doc->{keys} = [grep { $want{$_->{kid} // ''} } @{ $doc->{keys} }];
    open my $out, '>', $path or die "$path: $!";
    print $out JSON::PP->new->encode($doc);
    close $out;
}

sub ask { authorize($main::body, token => $_[0], path => '/authorize') }

# the documents nginx -t reads (must_die blocks run no init): made now
our $dir = File::Temp::tempdir(CLEANUP => 1);
sub dir { $main::dir }

{
    open my $f, '>', "$dir/not-jwks.json" or die $!;
    print $f '{"kty":"RSA"}';
    close $f;
    jwks_with("$dir/none.json", 'hmac', 'rsa-enc');
    jwks_with("$dir/rotating.json", 'rsa-1');
    open my $in, '<', $jwks or die $!;
    my $doc = JSON::PP->new->decode(do { local $/; <$in> });
    my ($rsa) = grep { $_->{kid} eq 'rsa-1' } @{ $doc->{keys} };
    my ($ec) = grep { $_->{kid} eq 'ec-1' } @{ $doc->{keys} };
    my %bad = (
        b64 => [{ %$rsa, n => 'not base64url!' }],
        curve => [{ %$ec, y => $ec->{x} }],
        short => [{ %$rsa, n => substr($rsa->{n}, 0, 100) }],
    );
    for my $k (keys %bad) {
        open my $out, '>', "$dir/bad-$k.json" or die $!;
        print $out JSON::PP->new->encode({ keys => $bad{$k} });
        close $out;
    }
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};
    sark_jwt_jwks_file $main::jwks;
    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};
    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};
_EOC_
    $block->set_value(config => "    location = /authorize { sark_api authorize; }\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: tokens verified by the JWKS, each key chosen by its kid
--- init
my @cases = (
    ['RS256, kid rsa-1', pk_jwt('RS256', "$main::keys/rsa.key", header => { kid => 'rsa-1' }), 200],
    ['ES256, kid ec-1', pk_jwt('ES256', "$main::keys/ec.key", header => { kid => 'ec-1' }), 200],
    ['the second RSA key, kid rsa-2', pk_jwt('RS256', "$main::keys/rsa2.key", header => { kid => 'rsa-2' }), 200],
    ['no kid: every key of the algorithm is tried', pk_jwt('RS256', "$main::keys/rsa2.key"), 200],
    ['signed by rsa-2, claiming rsa-1', pk_jwt('RS256', "$main::keys/rsa2.key", header => { kid => 'rsa-1' }), 401],
    ['a kid the document does not have', pk_jwt('RS256', "$main::keys/rsa.key", header => { kid => 'rotated-away' }), 401],
    ['a kid that is not a string', pk_jwt('RS256', "$main::keys/rsa.key", header => { kid => 7 }), 401],
    ['HS256 naming an "oct" key that was skipped', jwt(header => { kid => 'hmac' }, secret => 'secret-secret-secret-secret-secret'), 401],
    ['ES256 signed with the other EC key', pk_jwt('ES256', "$main::keys/ec2.key", header => { kid => 'ec-1' }), 401],
);
for my $c (@cases) {
    my ($what, $token, $status) = @$c;
    my $r = main::ask($token);
    is($r->{status}, $status, "$what: $status") or diag($r->{body});
}
my $r = main::ask(pk_jwt('RS256', "$main::keys/rsa.key", header => { kid => 'rotated-away' }));
is($r->{json}{error}{message}, "no key with the token's \"kid\"", 'an unknown kid says so');
--- request
GET /authorize
--- error_code: 405
--- error_log
a key is skipped: not an RS256 or ES256 signing key



=== TEST 2: nginx -t refuses a missing file
--- http_config
    sark_sarkd unix:$TEST_NGINX_SARKD_SOCKET;
    sark_jwt_jwks_file /nonexistent/jwks.json;
--- must_die
--- error_log
"sark_jwt_jwks_file": cannot open "/nonexistent/jwks.json"



=== TEST 3: nginx -t refuses a document that is not a JWKS
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/not-jwks.json;\n"
--- must_die
--- error_log
is not a JWKS document (a JSON object with a "keys" array)



=== TEST 4: nginx -t refuses a document without a key of ours
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/none.json;\n"
--- must_die
--- error_log
holds no RS256 or ES256 signing key



=== TEST 5: nginx -t refuses a broken key: a point off the curve
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/bad-curve.json;\n"
--- must_die
--- error_log
an EC key is not a point on P-256



=== TEST 6: a short RSA key in a JWKS is refused
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/bad-short.json;\n"
--- must_die
--- error_log
is shorter than 2048 bits



=== TEST 7: a key that is not base64url is refused
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/bad-b64.json;\n"
--- must_die
--- error_log
an RSA key's "n" or "e" is not base64url of the right size



=== TEST 8: nginx -s reload takes a new document: a key added works, a key removed stops
--- http_config eval
"    sark_sarkd unix:$ENV{TEST_NGINX_SARKD_SOCKET};\n    sark_jwt_jwks_file " . main::dir() . "/rotating.json;\n"
. "    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};\n    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};\n"
--- init
my $one = pk_jwt('RS256', "$main::keys/rsa.key", header => { kid => 'rsa-1' });
my $two = pk_jwt('RS256', "$main::keys/rsa2.key", header => { kid => 'rsa-2' });
is(main::ask($one)->{status} . ' ' . main::ask($two)->{status}, '200 401', 'before: rsa-1 only');
main::jwks_with(main::dir() . '/rotating.json', 'rsa-2');
(my $prefix = Test::Sark::html_dir()) =~ s{/html$}{};
open my $fh, '<', "$prefix/logs/nginx.pid" or die "nginx.pid: $!";
my ($master) = <$fh> =~ /(\d+)/;
my @old = Test::Sark::children_of($master);
kill 'HUP', $master;
# until the old workers are gone one of them may still accept a connection
# and answer with the old document: wait for them, then for the new ones
ok(Test::Sark::wait_gone(15, @old)
   && poll_until(10, sub { main::ask($two)->{status} == 200 && main::ask($one)->{status} == 401 }),
   'after the reload: rsa-2 verifies, rsa-1 does not');
is(join(' ', map { main::ask($one)->{status} . '/' . main::ask($two)->{status} } 1 .. 5),
   join(' ', ('401/200') x 5), 'and so it stays');
--- request
GET /authorize
--- error_code: 405
