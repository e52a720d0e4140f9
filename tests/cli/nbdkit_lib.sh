# nbdkit servers on Unix sockets in the test's temporary folder, for the tests that copy
# to NBD exports. Sourced after lib.sh. A server is known by a NAME: its socket is
# $WORK/NAME.sock, its pid file $WORK/NAME.pid and its request log, if it has one,
# $WORK/NAME.log.

# serve [--log] [--wait] NAME ARGS...: nbdkit with ARGS (filters, then the plugin and
# its parameters) on NAME's socket, stopped at exit. --log puts nbdkit's log filter in
# front of the others, writing NAME.log; --wait waits (up to 5 s) for the socket to
# appear. The log and socket of an earlier server of that NAME are removed first.
serve() {
    local log=0 wait=0 name i
    while :; do
        case $1 in
            --log) log=1 ;;
            --wait) wait=1 ;;
            *) break ;;
        esac
        shift
    done
    name=$1
    shift
    local args=("$@")
    [ "$log" -eq 0 ] || args=(--filter=log "$@" logfile="$WORK/$name.log")
    rm -f "$WORK/$name.log" "$WORK/$name.sock"
    nbdkit -U "$WORK/$name.sock" -P "$WORK/$name.pid" "${args[@]}" ||
        fail "nbdkit $* did not start"
    at_exit "kill \$(cat '$WORK/$name.pid' 2>/dev/null) 2>/dev/null"
    if [ "$wait" -eq 1 ]; then
        for ((i = 0; i < 100; i++)); do
            [ -S "$WORK/$name.sock" ] && break
            sleep 0.05
        done
    fi
}

# stop NAME: stop NAME's server and wait until it is gone.
stop() {
    local pid
    pid=$(cat "$WORK/$1.pid")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# uri NAME: the NBD URI of NAME's export.
uri() { echo "nbd+unix:///?socket=$WORK/$1.sock"; }
