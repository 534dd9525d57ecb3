# A clone works anywhere, a mode-700 home directory included: the private
# PostgreSQL runs as postgres, which cannot enter such a checkout, so its
# cluster lives in a directory postgres owns outside it, named after the
# run directory, and `scripts/stack status` says where.  Nothing loosens
# the permissions of the user's directories.
use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Temp ();
use File::Path ();
use File::Basename ();
use Test::Sark::Util qw(repo_root);

plan skip_all => 'needs root (PostgreSQL runs as the postgres user)' if $> != 0;
plan tests => 8;

my $root = repo_root();
my $home = File::Temp::tempdir('sark-home-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0700, $home or die "chmod $home: $!";
my $checkout = "$home/clone";
File::Path::make_path("$checkout/scripts");
system('cp', "$root/scripts/stack", "$checkout/scripts/stack") == 0 or die 'cp failed';

my $port = ($ENV{TEST_NGINX_PG_PORT} // 15440) + 20;
local $ENV{SARK_RUN_DIR} = "$checkout/run";
local $ENV{SARK_PG_PORT} = $port;

sub stack_cmd {
    my $out = `$checkout/scripts/stack @_ 2>&1`;
    return ($? == 0, $out);
}

my ($ok, $out) = stack_cmd('start', 'postgres');
ok($ok, 'the private PostgreSQL starts for a checkout under a mode-700 directory')
    or diag($out);
my (undef, $status) = stack_cmd('status');
my ($dir) = $status =~ /^postgres: (\S+) /m;
ok(defined $dir && index($dir, $home) != 0, 'its cluster lives outside the checkout')
    or diag($status);
like($dir // '', qr{/clone-[0-9a-f]{12}/pg$}, 'in a directory named after the checkout');
is((stat(defined $dir ? "$dir/data" : '/nonexistent'))[4], scalar getpwnam('postgres'),
   'owned by postgres');
like($status, qr/^postgres\s+running/m, 'scripts/stack status shows it running');
my $one = `psql -X -h 127.0.0.1 -p $port -U postgres -d sark -tAc 'SELECT 1' 2>&1`;
is($one, "1\n", 'database sark answers');
is((stat $home)[2] & 07777, 0700, 'the home directory is still mode 700');

($ok, $out) = stack_cmd('stop', 'postgres');
ok($ok && $out =~ /stopped/, 'and it stops') or diag($out);
File::Path::remove_tree(File::Basename::dirname($dir)) if $dir && $dir =~ m{/sark-gateway/};
