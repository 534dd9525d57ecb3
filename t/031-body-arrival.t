# How a decision request's body reaches nginx does not change its answer:
# whole with the headers, after them in another packet, chunked, or
# followed on the same connection by the next (pipelined) request.
use lib 't/lib';
use Test::Sark;
use Test::Sark::Util qw(nonce raw_exchange split_responses decision_is l1_ready);

repeat_each(1);

# Block 1: 7 + 2.
plan tests => repeat_each() * (7 + 2);

our $N = nonce();
our $token = jwt(sub => "u-$N-arrival", email => 'a@example.com', roles => ['analyst']);

our $LIST = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"list_tables"}';
our $DROP = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp","tool_name":"drop_table"}';

# head(BODY_LENGTH or 'chunked', CLOSE): request line and headers
sub head {
    my ($len, $close) = @_;
    return "POST /authorize HTTP/1.1\r\nHost: localhost\r\n"
         . "Authorization: Bearer $token\r\nContent-Type: application/json\r\n"
         . ($len eq 'chunked' ? "Transfer-Encoding: chunked\r\n" : "Content-Length: $len\r\n")
         . ($close ? "Connection: close\r\n" : '') . "\r\n";
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config => sark_http_config())
        unless defined $block->http_config;
    $block->set_value(config => "    location = /authorize { sark_api authorize; }\n"
                                . "    location = /api/v1/gateway/authorize { sark_api authorize; }\n")
        unless defined $block->config;
    $block->set_value(more_headers => "Authorization: Bearer $main::token")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: whole, split, chunked and pipelined bodies get the same answers
--- init
l1_ready() or Test::More::diag("the nginx worker did not learn the policy revision within 5 s");
my $L = length $main::LIST;
my @r = split_responses(raw_exchange([main::head($L, 1) . $main::LIST]));
decision_is($r[0], {allow => 1}, 'body with the headers: allowed');

@r = split_responses(raw_exchange([main::head($L, 1), substr($main::LIST, 0, 20), substr($main::LIST, 20)]));
decision_is($r[0], {allow => 1}, 'body after the headers, in two more packets: allowed');

@r = split_responses(raw_exchange([main::head('chunked', 1)
                                   . sprintf("%x\r\n%s\r\n0\r\n\r\n", $L, $main::LIST)]));
decision_is($r[0], {allow => 1}, 'chunked body: allowed');

@r = split_responses(raw_exchange([main::head($L, 0) . $main::LIST
                                   . main::head(length $main::DROP, 0) . $main::DROP
                                   . main::head($L, 1) . $main::LIST]));
is(scalar(@r), 3, 'three pipelined requests: three answers');
decision_is($r[0], {allow => 1}, 'pipelined 1 (list_tables): allowed');
decision_is($r[1], {allow => 0}, 'pipelined 2 (drop_table): denied');
decision_is($r[2], {allow => 1}, 'pipelined 3 (list_tables): allowed');
--- request eval
"POST /authorize\n$main::LIST"
--- error_code: 200
--- no_error_log
[error]
