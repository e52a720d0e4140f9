#!/usr/bin/env python3
"""Bytes on the wire of a copy over ssh (issue 17's bar: at most 1.05 x the compressed
image plus its bmap).

Usage: sudo python3 bench/ssh-bytes.py [--image IMAGE.xz] [--bmap BMAP] [--bmapkit PATH]
                                       [--dest PATH] [--runs N] [--nbd] [--output FILE]

An sshd of its own on 127.0.0.1 (keys made for the run, stopped at the end) is the
"remote" host, and its bmapkit is the one measured. Every ssh connection goes through a
proxy (ssh's ProxyCommand) that counts the bytes it carries each way, so the count is
what a real link would carry: ssh's handshake, the probe that looks for bmapkit on the
other side, the image and the bmap, encryption and framing. The copy goes to a file
(default: in /dev/shm) that is deleted after each run.

With --nbd the same copy also runs the other way, as to a host without bmapkit:
decoded here and written through nbdkit over ssh, which carries the mapped bytes.

The default image is the bench image, W0 "bar" as .xz; make it first with
    python3 bench/bench.py --prepare-only --workloads W0 --formats xz --only copy
sshd accepts logins only as root, hence sudo.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BAR = 1.05

PROXY = r'''
import os, socket, sys, threading
host, port, counts = sys.argv[1], int(sys.argv[2]), "%s.%d" % (sys.argv[3], os.getpid())
sock = socket.create_connection((host, port))
up = down = 0
lock = threading.Lock()

def report():
    with lock:
        with open(counts + ".tmp", "w") as f:
            f.write("%d %d\n" % (up, down))
        os.replace(counts + ".tmp", counts)

def upstream():
    global up
    while True:
        data = os.read(0, 1 << 16)
        if not data:
            sock.shutdown(socket.SHUT_WR)
            return
        sock.sendall(data)
        up += len(data)
        report()

threading.Thread(target=upstream, daemon=True).start()
while True:
    data = sock.recv(1 << 16)
    if not data:
        break
    os.write(1, data)
    down += len(data)
    report()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sshd:
    """An sshd on 127.0.0.1 and a client configuration that reaches it through the proxy."""

    def __init__(self, tmp):
        self.tmp = tmp
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(tmp, name)], check=True)
        shutil.copy(os.path.join(tmp, "client_key.pub"), os.path.join(tmp, "authorized_keys"))
        self.port = free_port()
        with open(os.path.join(tmp, "sshd_config"), "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {tmp}/host_key
PidFile {tmp}/sshd.pid
AuthorizedKeysFile {tmp}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
""")
        with open(os.path.join(tmp, "host_key.pub")) as f:
            key = " ".join(f.read().split()[:2])
        with open(os.path.join(tmp, "known_hosts"), "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {key}\n")
        with open(os.path.join(tmp, "proxy.py"), "w") as f:
            f.write(PROXY)
        os.makedirs("/run/sshd", exist_ok=True)
        subprocess.run(["/usr/sbin/sshd", "-f", os.path.join(tmp, "sshd_config"), "-E",
                        os.path.join(tmp, "sshd.log")], check=True)
        self.config = os.path.join(tmp, "ssh_config")

    def client_config(self, counts):
        with open(self.config, "w") as f:
            f.write(f"""Host bk-bench
    HostName 127.0.0.1
    Port {self.port}
    User root
    IdentityFile {self.tmp}/client_key
    IdentitiesOnly yes
    UserKnownHostsFile {self.tmp}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
    ProxyCommand {sys.executable} {self.tmp}/proxy.py %h %p {counts}
""")
        return self.config

    def stop(self):
        try:
            with open(os.path.join(self.tmp, "sshd.pid")) as f:
                os.kill(int(f.read()), 15)
        except (OSError, ValueError):
            pass


def counted(prefix):
    """Bytes up and down over every connection whose counts start with PREFIX."""
    up = down = 0
    folder, base = os.path.split(prefix)
    for name in os.listdir(folder):
        if name.startswith(base + ".") and name[len(base) + 1:].isdigit():
            with open(os.path.join(folder, name)) as f:
                u, d = f.read().split()
            up, down = up + int(u), down + int(d)
    return up, down


def run_copy(args, sshd, tmp, n, remote_bmapkit):
    counts = os.path.join(tmp, f"counts{n}")
    env = dict(os.environ, BMAPKIT_SSH_COMMAND=f"ssh -F {sshd.client_config(counts)}")
    cmd = [args.bmapkit, "-q", "copy", "--remote-bmapkit=" + remote_bmapkit, "--bmap",
           args.bmap, args.image, f"ssh://bk-bench{args.dest}"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    try:
        os.unlink(args.dest)
    except OSError:
        pass
    if r.returncode != 0:
        sys.exit(f"copy failed (status {r.returncode}): {r.stderr.strip()}")
    up, down = counted(counts)
    return up, down, wall


def mapped_bytes(bmap):
    """The mapped bytes the bmap names (MappedBlocksCount x BlockSize, at most ImageSize)."""
    text = open(bmap).read()

    def value(tag):
        return int(re.search(rf"<{tag}>\s*(\d+)\s*</{tag}>", text).group(1))
    return min(value("MappedBlocksCount") * value("BlockSize"), value("ImageSize"))


def main():
    work = os.path.join(HERE, "work", "full", "W0-bar")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default=os.path.join(work, "image.img.xz"))
    p.add_argument("--bmap", default=os.path.join(work, "image.bmap"))
    p.add_argument("--bmapkit", default=os.path.join(ROOT, "build-bench", "programs", "bmapkit"),
                   help="the command measured, here and on the other side")
    p.add_argument("--dest", default="/dev/shm/bmapkit-ssh-bytes.img")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--nbd", action="store_true", help="also copy the nbdkit way")
    p.add_argument("--output", help="also write the results to this markdown file")
    args = p.parse_args()
    args.bmapkit = os.path.abspath(args.bmapkit)
    for path, what in ((args.image, "image"), (args.bmap, "bmap"), (args.bmapkit, "bmapkit")):
        if not os.path.exists(path):
            sys.exit(f"no {what} at {path} (see --help)")
    if os.geteuid() != 0:
        sys.exit("sshd accepts logins only as root: run this with sudo")

    image_size = os.path.getsize(args.image)
    bmap_size = os.path.getsize(args.bmap)
    payload = image_size + bmap_size
    rows = []
    with tempfile.TemporaryDirectory(prefix="bmapkit-ssh-bytes.") as tmp:
        sshd = Sshd(tmp)
        try:
            ways = [("bmapkit there", args.bmapkit, payload)]
            if args.nbd:
                ways.append(("nbdkit there", "/nonexistent/bmapkit",
                             mapped_bytes(args.bmap)))
            n = 0
            for name, remote, base in ways:
                for _ in range(args.runs):
                    n += 1
                    up, down, wall = run_copy(args, sshd, tmp, n, remote)
                    rows.append((name, up, down, wall, base))
                    print(f"{name}: {up} bytes sent, {down} received, {wall:.2f} s, "
                          f"{up / base:.4f} x", flush=True)
        finally:
            sshd.stop()

    lines = [
        f"# Bytes on the wire of `bmapkit copy` over ssh",
        "",
        f"- image: `{args.image}` ({image_size} bytes), bmap: `{args.bmap}` ({bmap_size} bytes)",
        f"- mapped bytes: {mapped_bytes(args.bmap)}",
        f"- bmapkit: `{args.bmapkit}` ({subprocess.run([args.bmapkit, '--version'], capture_output=True, text=True).stdout.strip()})",
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| way | sent (bytes) | received | wall (s) | sent / base | base |",
        "|-----|-------------:|---------:|---------:|------------:|------|",
    ]
    for name, up, down, wall, base in rows:
        what = "image + bmap" if name == "bmapkit there" else "mapped bytes"
        lines.append(f"| {name} | {up} | {down} | {wall:.2f} | {up / base:.4f} | {what} |")
    worst = max(up / base for name, up, _, _, base in rows if name == "bmapkit there")
    verdict = "meets" if worst <= BAR else "misses"
    lines += ["", f"Largest ratio with bmapkit there: {worst:.4f}, which {verdict} the bar "
              f"of {BAR} x (compressed image + bmap)."]
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return 0 if worst <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
