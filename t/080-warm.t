# POST /api/v1/admin/cache/warm: admin only; every (pattern, user) pair is
# decided once and lands in the cache, so the user's first real request is
# an L1 hit.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce l1_ready);

repeat_each(1);
# blocks build on the ones before them (state of the stack, caches)
no_shuffle();

plan tests => repeat_each() * (blocks() * 2);

our $N = nonce();
our $ADMIN_KEY = 'warm-admin-key-0123456789';

stack('start', 'redis');

our $WARM = '{"patterns":[{"action":"gateway:tool:invoke","server":"postgres-mcp",'
          . '"tool":"list_tables","users":[{"id":"w-' . $N . '-1","email":"w@example.com",'
          . '"roles":["analyst"],"teams":[]},"w-' . $N . '-2"]}]}';

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config("sark_admin_key $main::ADMIN_KEY"))
        unless defined $block->http_config;
    $block->set_value(config => <<'_EOC_') unless defined $block->config;
    location = /api/v1/gateway/authorize { sark_api authorize; }
    location = /api/v1/admin/cache/warm { sark_api warm; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: warm two users: one with roles (allowed), one bare id (denied)
--- init
l1_ready() or die "nginx never learned the policy revision";
--- request eval
"POST /api/v1/admin/cache/warm\n$main::WARM"
--- more_headers eval
"X-Admin-Key: $main::ADMIN_KEY"
--- error_code: 200
--- response_body
{"status":"warmed","decisions":2,"already_cached":0,"allowed":1,"denied":1,"errors":0}



=== TEST 2: the warmed user's first request is an L1 hit
--- request eval
"POST /api/v1/gateway/authorize\n"
. '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}'
--- more_headers eval
"Authorization: Bearer " . jwt(sub => "w-$main::N-1", email => 'w@example.com', roles => ['analyst'])
--- error_code: 200
--- response_body_like: ^\{"allow":true,.*"cache":"L1"\}\}$



=== TEST 3: warming again finds both already cached
--- request eval
"POST /api/v1/admin/cache/warm\n$main::WARM"
--- more_headers eval
"X-Admin-Key: $main::ADMIN_KEY"
--- error_code: 200
--- response_body
{"status":"warmed","decisions":2,"already_cached":2,"allowed":1,"denied":1,"errors":0}



=== TEST 4: a non-admin token may not warm
--- request eval
"POST /api/v1/admin/cache/warm\n$main::WARM"
--- more_headers eval
"Authorization: Bearer " . jwt(roles => ['analyst'])
--- error_code: 403
--- response_body_like: "code":"AZ-002","message":"the admin role is required"



=== TEST 5: a wrong admin key
--- request eval
"POST /api/v1/admin/cache/warm\n$main::WARM"
--- more_headers
X-Admin-Key: nope
--- error_code: 401
--- response_body_like: "code":"AU-002","message":"invalid admin key"



=== TEST 6: patterns must be an array of objects with users
--- request
POST /api/v1/admin/cache/warm
{"patterns":{"action":"gateway:tool:invoke"}}
--- more_headers eval
"X-Admin-Key: $main::ADMIN_KEY"
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"expected \{\\"patterns\\": \[...\]\}"



=== TEST 7: a pattern without an action
--- request
POST /api/v1/admin/cache/warm
{"patterns":[{"users":["x"]}]}
--- more_headers eval
"X-Admin-Key: $main::ADMIN_KEY"
--- error_code: 400
--- response_body_like: "code":"GW-100","message":"each pattern needs an \\"action\\"



=== TEST 8: an admin token may warm
--- request
POST /api/v1/admin/cache/warm
{"patterns":[{"action":"gateway:server:access","server":"github-mcp","users":[{"id":"adm","roles":["admin"]}]}]}
--- more_headers eval
"Authorization: Bearer " . jwt(roles => ['admin'])
--- error_code: 200
--- response_body_like: ^\{"status":"warmed","decisions":1,"already_cached":[01],"allowed":1,"denied":0,"errors":0\}



=== TEST 9: a body larger than nginx's read buffers (900 users, over 30 KB) is read whole
--- request eval
"POST /api/v1/admin/cache/warm\n"
. '{"patterns":[{"action":"gateway:tool:invoke","server":"postgres-mcp","tool":"list_tables","users":['
. CORE::join(',', map { qq{"w-$main::N-bulk-user-number-$_"} } 1 .. 900) . ']}]}'
--- more_headers eval
"X-Admin-Key: $main::ADMIN_KEY"
--- timeout: 30
--- error_code: 200
--- response_body
{"status":"warmed","decisions":900,"already_cached":0,"allowed":0,"denied":900,"errors":0}
