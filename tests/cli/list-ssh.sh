#!/usr/bin/env bash
# bmapkit list ssh://HOST over an sshd on 127.0.0.1 whose bmapkit is this build: the same list as bmapkit list run there, as a table and as JSON, --all passed on; no bmapkit there, its error, no server, and bad URLs each as one error line.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/sshd_lib.sh"
require_tools python3
cd "$WORK"

# --- URLs are read strictly, before anything is connected
for bad in "ssh://" "ssh://host/dev/sdb" "ssh://me:pw@host" "ssh://host:x" "ssh://-l/"; do
    expect_fail 2 "bad ssh destination" "$BMAPKIT" list "$bad"
done
expect_fail 2 "unexpected argument 'more'" "$BMAPKIT" list ssh://host more
expect_fail 2 "--remote-bmapkit applies only with ssh://HOST" "$BMAPKIT" list --remote-bmapkit=x
pass "bad list targets are usage errors"

start_sshd
R="ssh://$SSH_HOST"

# same_list ARGS...: list over ssh prints what the command prints here (the same machine);
# disks can come and go while other tests run, so it may take a second try.
same_list() {
    local try
    for try in 1 2 3; do
        run_ok "$BMAPKIT" list --remote-bmapkit="$BMAPKIT" "$@" "$R"
        mv .out remote.out
        [ ! -s .err ] || { cat .err; fail "list $* over ssh printed messages"; }
        "$BMAPKIT" list "$@" >local.out 2>/dev/null
        cmp -s local.out remote.out && return 0
        sleep 1
    done
    diff local.out remote.out || true
    fail "list $* over ssh differs from the list here"
}

same_list --json
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' remote.out ||
    fail "list --json over ssh is not JSON"
pass "list --json over ssh: the list of the host, as JSON"
same_list --json --all
pass "list --json --all over ssh"
same_list
pass "list over ssh: the table"

# --- errors
expect_fail 1 "^bmapkit: error: $R: no '/nonexistent/bmapkit' on $SSH_HOST" \
    "$BMAPKIT" list --remote-bmapkit=/nonexistent/bmapkit "$R"
cat >failing-bmapkit <<'EOF'
#!/bin/sh
echo "bmapkit: warning: a warning there" >&2
echo "bmapkit: error: cannot list the disks: a reason there" >&2
exit 1
EOF
chmod +x failing-bmapkit
"$BMAPKIT" list --remote-bmapkit="$WORK/failing-bmapkit" "$R" >.out 2>.err && fail "a failing list there succeeded here"
[ "$(cat .err)" = "bmapkit: warning: $R: a warning there
bmapkit: error: $R: cannot list the disks: a reason there" ] || { cat .err; fail "the remote messages"; }
[ ! -s .out ] || fail "a failing list printed a list"
port=$(free_tcp_port)
expect_fail 1 "^bmapkit: error: ssh://127.0.0.1:$port: .*Connection refused" \
    "$BMAPKIT" list "ssh://127.0.0.1:$port"
pass "no bmapkit there, its error and warning, and no server each as one line"
