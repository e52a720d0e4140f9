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

# free_tcp_port: a TCP port on 127.0.0.1 nobody listens on now.
free_tcp_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

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
