#!/usr/bin/env python3
"""The tests a swift-testing console log shows started and not ended (Scripts/test prints
them when the test phase runs past its time limit)."""
import re
import sys

started = {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    match = re.match(r"^\S+ (Test|Suite) (.+?) (started|passed|failed|skipped|recorded)\b", line.rstrip("\n"))
    if not match:
        continue
    kind, name, event = match.groups()
    name = re.sub(r" (passed|failed) after .*$", "", name)
    if event == "started":
        started[(kind, name)] = started.get((kind, name), 0) + 1
    elif event in ("passed", "failed", "skipped") and started.get((kind, name)):
        started[(kind, name)] -= 1
unfinished = [f"  {kind} {name}" for (kind, name), count in started.items() if count > 0]
print("\n".join(unfinished) if unfinished else "  (none: the run hangs after its tests)")
