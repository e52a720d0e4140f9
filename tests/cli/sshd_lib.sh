# An OpenSSH server on 127.0.0.1 for the tests that reach a "remote" host over ssh.
# Sourced after lib.sh. start_sshd makes a host key and a client key in the test's
# temporary folder, starts sshd on a free port (stopped at exit) and writes a client
# configuration naming the host "bk-remote"; afterwards:
#   SSH_CONFIG           the client configuration (ssh -F "$SSH_CONFIG" bk-remote ...)
#   SSH_HOST             bk-remote
#   SSH_PORT             the server's port
#   SSH_LOG              the server's log
#   BMAPKIT_SSH_COMMAND  "ssh -F $SSH_CONFIG", exported: how bmapkit runs ssh
# SSHD_EXTRA_CONFIG, when set before start_sshd, holds more server configuration lines
# (a ForceCommand, say), added after the ones above.
# sshd must run as root to take logins; start_sshd skips the script otherwise.

start_sshd() {
    local dir="$WORK/sshd" i
    [ "$(id -u)" -eq 0 ] || skip "sshd needs root to accept logins"
    require_tools ssh ssh-keygen
    [ -x /usr/sbin/sshd ] || fail "/usr/sbin/sshd is not installed (scripts/install-deps.sh installs it)"
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -C bmapkit-test-host -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -C bmapkit-test-client -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    SSH_PORT=$(free_tcp_port)
    SSH_LOG="$dir/sshd.log"
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
Subsystem sftp internal-sftp
EOF
    [ -z "${SSHD_EXTRA_CONFIG:-}" ] || printf '%s\n' "$SSHD_EXTRA_CONFIG" >>"$dir/sshd_config"
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$SSH_LOG" ||
        fail "sshd did not start: $(tail -n 3 "$SSH_LOG" 2>/dev/null)"
    at_exit "kill \$(cat '$dir/sshd.pid' 2>/dev/null) 2>/dev/null"
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    SSH_HOST=bk-remote
    SSH_CONFIG="$dir/ssh_config"
    cat >"$SSH_CONFIG" <<EOF
Host $SSH_HOST
    HostName 127.0.0.1
    Port $SSH_PORT
    User root
    IdentityFile $dir/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
EOF
    export BMAPKIT_SSH_COMMAND="ssh -F $SSH_CONFIG"
    for i in $(seq 50); do
        ssh -F "$SSH_CONFIG" "$SSH_HOST" true 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no ssh login to 127.0.0.1:$SSH_PORT: $(tail -n 5 "$SSH_LOG")"
}

# ssh_proxy_config COUNTS [--rate BYTES_PER_SECOND]: print the path
# of a client configuration like $SSH_CONFIG whose connections go through a proxy
# (ProxyCommand) on the wire between ssh and sshd. Each connection keeps "UP DOWN" (bytes
# client to server, server to client so far) in COUNTS.PID (ssh may kill the proxy at
# its end; PID is the proxy's, which a test kills to cut the link); --rate holds the
# upstream to a rate. proxy_sent COUNTS sums the upstream bytes.
ssh_proxy_config() {
    local counts=$1 dir="$WORK/sshd" n
    shift
    [ -f "$dir/proxy.py" ] || cat >"$dir/proxy.py" <<'PY'
import os, socket, sys, threading, time
host, port, counts = sys.argv[1], int(sys.argv[2]), "%s.%d" % (sys.argv[3], os.getpid())
rate = int(sys.argv[5]) if sys.argv[4:5] == ["--rate"] else None
sock = socket.create_connection((host, port))
up = down = 0
start = time.monotonic()
lock = threading.Lock()

def report():
    with lock:
        with open(counts + ".tmp", "w") as f:
            f.write("%d %d\n" % (up, down))
        os.replace(counts + ".tmp", counts)

def upstream():
    global up
    while True:
        data = os.read(0, 65536)
        if not data:
            sock.shutdown(socket.SHUT_WR)
            return
        sock.sendall(data)
        up += len(data)
        report()
        if rate:
            ahead = up / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

threading.Thread(target=upstream, daemon=True).start()
while True:
    try:
        data = sock.recv(65536)
    except OSError:
        break
    if not data:
        break
    os.write(1, data)
    down += len(data)
    report()
PY
    n=$(ls "$dir" | grep -c '^ssh_config_proxy' || true)
    sed "/^Host /a\\    ProxyCommand python3 $dir/proxy.py %h %p $counts $*" "$SSH_CONFIG" \
        >"$dir/ssh_config_proxy$n"
    echo "$dir/ssh_config_proxy$n"
}

proxy_sent() {
    cat "$1".[0-9]* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}
