# make install into a DESTDIR with another PREFIX, then make uninstall:
# the module, sarkd (hardened: full RELRO, bind now), the unit whose
# ExecStart names PREFIX (Type=notify, the spool as its StateDirectory),
# the sark user for systemd-sysusers, the settings and policies; the unit
# passes systemd-analyze verify where systemd-analyze is installed.
# Uninstall removes what install put there and keeps the settings.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp ();
use Test::Sark::Util qw(repo_root);

my $root = repo_root();
my $dest = File::Temp::tempdir(CLEANUP => 1);
my $prefix = '/opt/sark-test';

sub make_in {
    my $out = `make -C $root --no-print-directory @_ DESTDIR=$dest PREFIX=$prefix 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = make_in('install');
is($rc, 0, 'make install into a DESTDIR') or diag($out);

my %want = (
    "usr/lib/nginx/modules/ngx_http_sark_module.so" => 0644,
    "opt/sark-test/sbin/sarkd"                      => 0755,
    "lib/systemd/system/sarkd.service"              => 0644,
    "usr/lib/sysusers.d/sark-gateway.conf"          => 0644,
    "etc/sark/sarkd.env"                            => 0640,
    "etc/sark/policies/gateway.rego"                => 0644,
    "etc/sark/policies/data.json"                   => 0644,
    "usr/share/doc/sark-gateway/README.md"          => 0644,
);
for my $f (sort keys %want) {
    my @st = stat "$dest/$f";
    ok(@st && ($st[2] & 07777) == $want{$f}, sprintf('%s installed, mode %04o', $f, $want{$f}));
}
ok(!-e "$dest/etc/sark/policies/gateway_test.rego", 'policy tests are not installed');

open my $fh, '<', "$dest/lib/systemd/system/sarkd.service" or die $!;
my $unit = do { local $/; <$fh> };
like($unit, qr{^ExecStart=$prefix/sbin/sarkd --env-file /etc/sark/sarkd\.env$}m, 'ExecStart names PREFIX, not DESTDIR');
like($unit, qr/^Type=notify$/m, 'Type=notify');
like($unit, qr/^StateDirectory=sark$/m, 'the spool directory is the unit\'s StateDirectory');
like($unit, qr{^Environment=AUDIT_SPOOL_DIR=/var/lib/sark/spool$}m, 'and sarkd spools there');
like($unit, qr/^ProtectSystem=strict$/m, 'the file system is read-only but for it');

open $fh, '<', "$dest/usr/lib/sysusers.d/sark-gateway.conf" or die $!;
like(do { local $/; <$fh> }, qr/^u sark /m, 'the sark user for systemd-sysusers');

my $elf = `readelf -d -l $dest/$prefix/sbin/sarkd 2>&1`;
like($elf, qr/BIND_NOW|FLAGS.*NOW/, 'sarkd: bind now');
like($elf, qr/GNU_RELRO/, 'sarkd: RELRO');

SKIP: {
    skip 'systemd-analyze is not installed', 1 unless grep { -x "$_/systemd-analyze" } split /:/, $ENV{PATH};
    # verify looks for ExecStart's binary on this host: point it at DESTDIR's
    (my $copy = $unit) =~ s{^ExecStart=$prefix}{ExecStart=$dest$prefix}m;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    open my $u, '>', "$dir/sarkd.service" or die $!;
    print $u $copy;
    close $u;
    my $v = `systemd-analyze verify $dir/sarkd.service 2>&1`;
    is($? >> 8, 0, 'systemd-analyze verify accepts the unit') or diag($v);
}

($rc, $out) = make_in('uninstall');
is($rc, 0, 'make uninstall') or diag($out);
ok(!-e "$dest/$_", "$_ removed")
    for grep { !m{^etc/sark/(sarkd\.env|policies/data\.json)$} } sort keys %want;
ok(-e "$dest/etc/sark/sarkd.env", 'the settings stay');

done_testing();
