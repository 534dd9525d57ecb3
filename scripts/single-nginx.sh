# Sourced by scripts/bench-ir: a single-process nginx
# (master_process off, daemon off: one process to profile, and one that
# exits when told) with the module, in front of the private sarkd under
# $RUN, with the JWT settings of conf/dev.env.  Uses MODULE, NGX, RUN, PORT
# and SARK_JWT_* of the caller.
#
#   single_nginx_conf HTTP_LINES   the server's body on stdin; writes
#                                  $NGX/conf/nginx.conf
#   single_nginx_wait PID          until nginx answers on PORT; status 1
#                                  when PID died or 10 s went by

single_nginx_conf() {
    local server
    server=$(cat)
    mkdir -p "$NGX/conf" "$NGX/logs" "$NGX/tmp"
    cat >"$NGX/conf/nginx.conf" <<EOF
load_module $MODULE;
worker_processes 1;
master_process off;
daemon off;
error_log $NGX/logs/error.log warn;
pid $NGX/logs/nginx.pid;
events { worker_connections 256; }
http {
    $1
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    sark_sarkd unix:$RUN/sarkd.sock;
    sark_jwt_secret $SARK_JWT_SECRET;
    sark_jwt_issuer $SARK_JWT_ISSUER;
    sark_jwt_audience $SARK_JWT_AUDIENCE;
    sark_cache_zone sark_l1 16m;
    server {
        listen 127.0.0.1:$PORT;
$server
    }
}
EOF
}

single_nginx_wait() {
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$1" 2>/dev/null || return 1
        curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
        sleep 0.2
    done
    return 1
}
