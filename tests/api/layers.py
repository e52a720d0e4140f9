#!/usr/bin/env python3
"""The library's dependency rule, checked on the #include lines of the tree.

Each folder of lib/ is a layer, and a file may include headers of its own layer and of
the layers that LOWER lists for it, nothing else; public headers count as the layer
PUBLIC names. The command (programs/) may include only public headers and its own.
Fails on an upward or sideways include, an include cycle between files, a .c file
directly in lib/, or a layer folder this script does not know. HACKING.md states the
same rule in words.
"""
import os
import re
import sys

LOWER = {
    "common": [],
    "digest": ["common"],
    "os": ["common"],
    "net": ["common"],
    "bmap": ["common", "digest", "net"],
    "create": ["common", "digest", "bmap"],
    "source": ["common", "net"],
    "dest": ["common", "os"],
    "decode": ["common", "source"],
    "copy": ["common", "digest", "bmap", "source", "dest"],
    "signature": ["common", "bmap"],
}

PUBLIC = {
    "api.h": "common",
    "error.h": "common",
    "version.h": "common",
    "digest.h": "digest",
    "bmap.h": "bmap",
    "map.h": "create",
    "create.h": "create",
    "format.h": "source",
    "fetch.h": "net",
    "source.h": "source",
    "disk.h": "os",
    "dest.h": "dest",
    "copy.h": "copy",
    "signature.h": "signature",
    "bmapkit.h": "programs",  # the umbrella: for programs, never inside the library
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_lib_file(rel):
    """Layer of a path relative to lib/: its first folder."""
    return rel.split("/", 1)[0]


def main(top):
    problems = []
    edges = {}
    lib = os.path.join(top, "lib")
    files = []
    for base, _, names in os.walk(lib):
        for n in names:
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(base, n), top))
    for n in os.listdir(os.path.join(top, "include", "bmapkit")):
        if n.endswith(".h"):
            files.append("include/bmapkit/" + n)
    for n in os.listdir(os.path.join(top, "programs")):
        if n.endswith((".c", ".h")):
            files.append("programs/" + n)

    for f in sorted(files):
        parts = f.split("/")
        if parts[0] == "lib" and len(parts) == 2:
            if f.endswith(".c"):
                problems.append(f"{f}: a .c file directly in lib/ belongs to no layer")
            continue
        if parts[0] == "lib":
            me = layer_of_lib_file("/".join(parts[1:]))
            if me not in LOWER:
                problems.append(f"{f}: lib/{me}/ is not a layer of the rule")
                continue
        elif parts[0] == "include":
            me = PUBLIC.get(parts[2])
            if me is None:
                problems.append(f"{f}: a public header with no layer in the rule")
                continue
        else:
            me = "programs"
        with open(os.path.join(top, f), encoding="utf-8") as fh:
            text = fh.read()
        edges[f] = []
        for inc in INCLUDE.findall(text):
            target, theirs = resolve(top, f, inc)
            if target is None:
                problems.append(f"{f}: includes \"{inc}\", which is not in the tree")
                continue
            edges[f].append(target)
            if not allowed(me, theirs, f, target):
                problems.append(f"{f} ({me}) includes \"{inc}\" ({theirs}): "
                                f"{me} may include only {describe(me)}")
    problems += cycles(edges)
    for p in problems:
        print("layer rule:", p)
    print(f"{len(files)} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def resolve(top, f, inc):
    """The file an include names, and the layer it belongs to."""
    if inc.startswith("bmapkit/"):
        name = inc.split("/", 1)[1]
        path = "include/bmapkit/" + name
        return (path if os.path.exists(os.path.join(top, path)) else None), \
            "public:" + PUBLIC.get(name, "?")
    if f.startswith("programs/"):
        path = "programs/" + inc
        return (path if os.path.exists(os.path.join(top, path)) else None), "programs"
    path = "lib/" + inc
    if not os.path.exists(os.path.join(top, path)):
        return None, "?"
    return path, layer_of_lib_file(inc)


def allowed(me, theirs, f, target):
    if theirs.startswith("public:"):
        layer = theirs.split(":", 1)[1]
        if me == "programs":
            return True
        if layer == "programs":
            return False
        return layer == me or layer in LOWER.get(me, [])
    if me == "programs":
        return theirs == "programs"
    if f.startswith("include/"):
        return False  # public headers include only public headers
    return theirs == me or theirs in LOWER[me]


def describe(me):
    if me == "programs":
        return "public headers and programs/"
    return ", ".join([me] + LOWER.get(me, [])) or me


def cycles(edges):
    found = []
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                found.append("include cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [])
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else
                  os.path.join(os.path.dirname(__file__), "..", "..")))
