#!/usr/bin/env python3
"""Sum meson's test logs and the extra results of scripts/test.sh into one line."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
passed = failed = skipped = 0
for log in sorted(out.glob("*/meson-logs/testlog.json")):
    for line in log.read_text().splitlines():
        t = json.loads(line)
        result = t["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
            reason = next((l for l in t.get("stdout", "").splitlines() if l.startswith("SKIP")), "SKIP: no reason given")
            print(f"skipped {log.parent.parent.name}/{t['name']}: {reason}")
        else:
            failed += 1
            # The test's own verdict says more than meson's result (a missing tool, say).
            reason = next((l for l in t.get("stdout", "").splitlines() if l.startswith("FAIL")), result)
            print(f"failed {log.parent.parent.name}/{t['name']}: {reason}")
# Lines "NAME PASS", "NAME FAIL" or "NAME SKIP why" from scripts/test.sh itself.
extra = out / "extra.txt"
if extra.exists():
    for line in extra.read_text().splitlines():
        name, result, *why = line.split(" ", 2)
        if result == "PASS":
            passed += 1
        elif result == "SKIP":
            skipped += 1
            print(f"skipped {name}: SKIP: {why[0] if why else 'no reason given'}")
        else:
            failed += 1
            print(f"failed {name}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
