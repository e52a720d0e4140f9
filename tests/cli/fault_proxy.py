#!/usr/bin/env python3
# An HTTP proxy for the network fault tests: it stands between bmapkit and a real server
# on 127.0.0.1 and spoils chosen answers. Each request goes to the server on a
# connection of its own ("Connection: close"), so every answer is one connection here.
# Requests for PATH are counted from 1 (GET only); the faults apply to them:
#   --cut N:BYTES     from the Nth request on, the first answer with more than BYTES
#                     bytes of body is cut off after BYTES bytes of body (once)
#   --fail N          the Nth request gets status 500 (once)
#   --fail-from N     every request from the Nth gets status 500
#   --stall-from N    every request from the Nth gets the headers and BYTES of body
#                     (--stall-bytes, default 0), then nothing while the client waits
# Every request and fault is a line of --log: "REQ n METHOD PATH RANGE", "CUT n START
# BYTES" (the answer began at byte START of the file), "FAIL n", "STALL n".
# The port listened on is written to --port-file once it accepts connections.
import argparse
import os
import socket
import sys
import threading

parser = argparse.ArgumentParser()
parser.add_argument("--upstream", type=int, required=True)
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--path", required=True)
parser.add_argument("--cut")
parser.add_argument("--fail", type=int, default=0)
parser.add_argument("--fail-from", type=int, default=0)
parser.add_argument("--stall-from", type=int, default=0)
parser.add_argument("--stall-bytes", type=int, default=0)
args = parser.parse_args()

lock = threading.Lock()
state = {"count": 0, "cut_done": False}
cut_from, cut_bytes = (int(x) for x in args.cut.split(":")) if args.cut else (0, 0)
logf = open(args.log, "a", buffering=1)


def log(line):
    with lock:
        logf.write(line + "\n")


def read_head(sock):
    """The bytes up to the end of the head of an HTTP message, and what came after."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def header(lines, name):
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return ""


def send_all(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def handle(client):
    try:
        serve(client)
    except OSError:
        pass
    finally:
        client.close()


def serve(client):
    head, rest = read_head(client)
    if head is None:
        return
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    rng = header(lines, "range")
    n = 0
    if method == "GET" and path.split("?")[0] == args.path:
        with lock:
            state["count"] += 1
            n = state["count"]
    log("REQ %d %s %s %s" % (n, method, path, rng or "-"))
    if n and (n == args.fail or (args.fail_from and n >= args.fail_from)):
        log("FAIL %d" % n)
        send_all(client, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                 b"Connection: close\r\n\r\n")
        return
    # To the server, on a connection of its own that ends with the answer.
    kept = [l for l in lines if l.partition(":")[0].strip().lower() not in ("connection",
                                                                             "keep-alive")]
    request = ("\r\n".join(kept + ["Connection: close"]) + "\r\n\r\n").encode("latin-1")
    up = socket.create_connection(("127.0.0.1", args.upstream))
    try:
        up.sendall(request + rest)
        relay(client, up, n, rng)
    finally:
        up.close()


def relay(client, up, n, rng):
    uhead, body = read_head(up)
    if uhead is None:
        return
    if not send_all(client, uhead + b"\r\n\r\n"):
        return
    stall = n and args.stall_from and n >= args.stall_from
    cut = None
    if n and n >= cut_from and cut_from:
        with lock:
            if not state["cut_done"]:
                cut = cut_bytes
    start = 0
    if rng.startswith("bytes="):
        start = int(rng[6:].split("-")[0] or 0)
    sent = 0
    limit = args.stall_bytes if stall else cut
    while True:
        if limit is not None and sent + len(body) > limit:
            if cut is not None and not stall:
                with lock:
                    if state["cut_done"]:
                        limit = None
                        continue
                    state["cut_done"] = True
            send_all(client, body[:limit - sent])
            if stall:
                log("STALL %d" % n)
                # Nothing more until the client gives up.
                client.settimeout(None)
                while client.recv(65536):
                    pass
            else:
                log("CUT %d %d %d" % (n, start, limit))
                client.shutdown(socket.SHUT_RDWR)
            return
        if body and not send_all(client, body):
            return
        sent += len(body)
        body = up.recv(65536)
        if not body:
            return


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
with open(args.port_file + ".tmp", "w") as f:
    f.write("%d\n" % server.getsockname()[1])
os.rename(args.port_file + ".tmp", args.port_file)
while True:
    c, _ = server.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
