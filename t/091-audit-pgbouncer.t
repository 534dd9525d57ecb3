# sarkd's audit store through PgBouncer in transaction pooling mode (no
# session state, no named prepared statements): a second sarkd whose
# DATABASE_URL points at PgBouncer, over an empty database, applies the
# migrations and stores every decision.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce authorize l1_ready poll_until pg_query);

repeat_each(1);

plan tests => repeat_each() * 3 + 3;

our $N = nonce();
our $DB = "sark_pgb_$N";
our $RUN = ($ENV{SARK_RUN_DIR} // "$ENV{TEST_NGINX_REPO}/run/test") . '/pgb';
our $PGB_PORT = $ENV{TEST_NGINX_PGBOUNCER_PORT} // 15441;

stack('start', 'postgres', 'pgbouncer');
pg_query(qq{CREATE DATABASE "$DB"});

# a sarkd of its own (socket under $RUN), writing through PgBouncer
{
    local $ENV{SARK_RUN_DIR} = $RUN;
    local $ENV{SARK_DATABASE_URL} = "postgresql://postgres\@127.0.0.1:$PGB_PORT/$DB";
    stack('start', 'sarkd');
}
$ENV{TEST_NGINX_PGB_SOCKET} = "$RUN/sarkd.sock";

END {
    local $?;    # the exit status of the suite, not of scripts/stack
    local $ENV{SARK_RUN_DIR} = $RUN;
    eval { stack('stop', 'sarkd') };
    eval { stack('stop', 'pgbouncer') };
    eval { pg_query(qq{DROP DATABASE IF EXISTS "$DB"}) };
}

sub db_value {
    my ($sql) = @_;
    my $out = `psql -X -h 127.0.0.1 -p $ENV{TEST_NGINX_PG_PORT} -U postgres -d $DB -tAc "$sql" 2>&1`;
    chomp $out;
    return $out;
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => <<"_EOC_") unless defined $block->http_config;
    sark_sarkd unix:$ENV{TEST_NGINX_PGB_SOCKET};
    sark_jwt_secret $ENV{TEST_NGINX_JWT_SECRET};
    sark_jwt_issuer $ENV{TEST_NGINX_JWT_ISSUER};
    sark_jwt_audience $ENV{TEST_NGINX_JWT_AUDIENCE};
    sark_cache_zone sark_l1 1m;
_EOC_
    $block->set_value(config => <<'_EOC_') unless defined $block->config;
    location = /api/v1/gateway/authorize { sark_api authorize; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: through PgBouncer: migrations applied on an empty database, decisions stored (hits included)
--- init
ok(poll_until(10, sub { db_value('SELECT count(*) FROM sark_schema_migrations') =~ /^[1-9]/ }),
   'the migrations were applied through PgBouncer');
# the worker learns this sarkd's policy revision (a decision taken before
# that is not cached)
l1_ready() or diag('the nginx worker did not learn the policy revision within 5 s');
my $tok = jwt(sub => "u-$main::N-pgb", email => 'a@example.com', roles => ['analyst']);
my $q = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}';
my @ids;
for (1 .. 5) {
    my $r = authorize($q, token => $tok);
    push @ids, $r->{json}{audit_id} if $r->{status} == 200;
}
ok(poll_until(10, sub { db_value("SELECT count(*) FROM gateway_audit_events WHERE user_id = 'u-$main::N-pgb'") eq '5' }),
   'five decisions, five rows');
is(db_value("SELECT count(*) FROM gateway_audit_events WHERE id IN ('" . join("','", @ids) . "')"), 5,
   'with the answers\' ids');
--- request
POST /api/v1/gateway/authorize
{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "u-$main::N-pgb", email => 'a@example.com', roles => ['analyst'])
--- error_code: 200
--- response_body_like: "cache":"L1"
--- no_error_log
[error]
