# An nginx on 127.0.0.1 for the tests that fetch images over http:// and https://.
# Sourced after lib.sh. Each nginx_server call adds a server on a free port; start_nginx
# writes the configuration, starts nginx (stopped at exit) and waits until every server
# takes connections; stop_nginx stops it earlier (a server gone during a copy). nginx
# keeps its configuration, pid, error log and temporary files in $NGINX_DIR.
# NGINX_LOG_FORMAT, when changed before start_nginx, is the format of the access logs.

NGINX_DIR=$WORK/nginx
# shellcheck disable=SC2016 # nginx's variables, not the shell's
NGINX_LOG_FORMAT='$request_method $uri $status $bytes_sent "$http_range"'
NGINX_PID=
_NGINX_SERVERS=
_NGINX_PORTS=()

# _nginx_path FILE: FILE as an absolute path (nginx reads relative ones from its prefix).
_nginx_path() {
    case $1 in
        /*) echo "$1" ;;
        *) echo "$PWD/$1" ;;
    esac
}

# nginx_server VAR [--root DIR] [--ssl CERT KEY] [--log FILE] [DIRECTIVE...]: one more
# server, on 127.0.0.1 and a free port left in VAR. --root: it serves the folder DIR;
# --ssl: it speaks TLS with the PEM certificate CERT and its key KEY; --log: it logs each
# request in FILE (in NGINX_LOG_FORMAT), otherwise nothing. Each DIRECTIVE is one more
# line of its server block (a location, say).
nginx_server() {
    # Underscored names, so that VAR (set with printf -v) may be any other name.
    local _var=$1 _port _lines="" _listen _line _i
    shift
    for ((_i = 0; _i < 10; _i++)); do
        _port=$(free_tcp_port)
        [[ " ${_NGINX_PORTS[*]} " == *" $_port "* ]] || break
    done
    [ "$_i" -lt 10 ] || fail "no free port for another nginx server (last $_port)"
    _listen="127.0.0.1:$_port"
    while [ $# -gt 0 ]; do
        case $1 in
            --root)
                _lines+="        root $(_nginx_path "$2");"$'\n'
                shift 2
                ;;
            --ssl)
                _listen+=" ssl"
                _lines+="        ssl_certificate $(_nginx_path "$2");"$'\n'
                _lines+="        ssl_certificate_key $(_nginx_path "$3");"$'\n'
                shift 3
                ;;
            --log)
                _lines+="        access_log $(_nginx_path "$2") sent;"$'\n'
                shift 2
                ;;
            *) break ;;
        esac
    done
    [[ $_lines == *"access_log "* ]] || _lines+="        access_log off;"$'\n'
    for _line in "$@"; do
        _lines+="        $_line"$'\n'
    done
    _NGINX_SERVERS+="    server {"$'\n'"        listen $_listen;"$'\n'"$_lines    }"$'\n'
    _NGINX_PORTS+=("$_port")
    printf -v "$_var" %s "$_port"
}

# start_nginx: nginx with the servers added so far, stopped at exit; fails unless each
# takes connections within 20 s.
start_nginx() {
    local port i
    mkdir -p "$NGINX_DIR/tmp"
    cat >"$NGINX_DIR/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
events { worker_connections 256; }
http {
    log_format sent '$NGINX_LOG_FORMAT';
    client_body_temp_path $NGINX_DIR/tmp;
    default_type application/octet-stream;
$_NGINX_SERVERS}
EOF
    nginx -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" &
    NGINX_PID=$!
    at_exit stop_nginx
    for port in "${_NGINX_PORTS[@]}"; do
        for ((i = 0; ; i++)); do
            python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" \
                2>/dev/null && break
            if [ "$i" -ge 200 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
                cat "$NGINX_DIR/error.log"
                fail "nginx did not start on port $port"
            fi
            sleep 0.1
        done
    done
}

# stop_nginx: stop the nginx of start_nginx, if it still runs, and wait for its end.
stop_nginx() {
    [ -n "$NGINX_PID" ] || return 0
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
}
