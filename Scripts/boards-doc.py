"""Render the table of docs/boards.md from a real run of Matrices/boards.json.

usage: python3 Scripts/boards-doc.py [--doc docs/boards.md] RUN_DIRECTORY [EARLIER_RUN...]

Reads RUN_DIRECTORY/results.json and the Targets/*.json the cells name, and replaces what
lies between the `<!-- boards table -->` and `<!-- end boards table -->` lines of the
document (the rest is written by hand). Verdicts come from RUN_DIRECTORY; a step it served
from the cache takes its time from the first EARLIER_RUN that ran it and passed (the
table says which run). Every figure comes from a run: nothing is typed.
"""
import json
import os
import sys

BEGIN, END = "<!-- boards table -->", "<!-- end boards table -->"


def seconds(value):
    return f"{value:.0f} s" if value is not None else "-"


def main(run_directory, earlier=(), document="docs/boards.md"):
    results = json.load(open(os.path.join(run_directory, "results.json")))
    steps = {(s["kind"], s["scope"]): s for s in results["steps"]}
    # A cached step's figure: the first run that ran it (uncached) and passed.
    for directory in earlier:
        earlier_results = json.load(open(os.path.join(directory, "results.json")))
        run_id = earlier_results["run"]["id"]
        for s in earlier_results["steps"]:
            mine = steps.get((s["kind"], s["scope"]))
            if mine and mine.get("cacheHit") and not s.get("cacheHit") and s["status"] == "passed" and s.get("key") == mine.get("key"):
                steps[(s["kind"], s["scope"])] = dict(s, fromRun=run_id)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for cell in results["cells"]:
        target = json.load(open(os.path.join(root, "Targets", cell["target"] + ".json")))
        q = target["qemu"]
        machine = f"`{q['binary']} -M {q['machine']}`" + (f" `-cpu {q['cpu']}`" if q.get("cpu") else "")
        source = target["deviceTree"]["source"]
        dtb = {"none": "none", "qemu": "QEMU's (dumped)", "build": f"built: `{cell['dtb']['file']}`" if cell.get("dtb") else "built"}[source]
        check = cell.get("dtb")
        if source == "none":
            verdict = "n/a"
        elif check is None:
            verdict = "not run"
        else:
            verdict = f"{'pass' if check['passed'] else 'FAIL'}: {check['errors']} error(s), {check['warnings']} warning(s)"
        boot = cell.get("boot") or {}
        marker = next((p["seconds"] for p in boot.get("phases", []) if p["name"] == "marker"), None)
        boot_text = boot.get("outcome", "not booted") + (f" (marker at {marker:.1f} s)" if marker is not None else "")
        config = steps.get(("kernel.config", cell["id"]), {})
        build = steps.get(("kernel.build", cell["id"]), {})
        busybox_abi = target["userspace"]["debianArch"]
        busybox = next((s for (k, scope), s in steps.items() if k == "busybox.build" and scope.startswith(busybox_abi + "-")), {})
        build_seconds = None
        if config.get("seconds") is not None and build.get("seconds") is not None:
            build_seconds = config["seconds"] + build["seconds"]
        cached = " (cached)" if build.get("cacheHit") else (f" (run {build['fromRun']})" if build.get("fromRun") else "")
        rows.append([
            f"`{cell['target']}`", target["kernel"]["arch"], machine, f"`{target['console']['device']}`", dtb,
            verdict, boot_text, "cached (built before these runs)" if build.get("cacheHit") else seconds(build_seconds) + cached,
            (seconds(busybox.get("seconds")) + (f" (run {busybox['fromRun']})" if busybox.get("fromRun") else "")
             if busybox and not busybox.get("cacheHit") else "cached (built before these runs)"),
            seconds(boot.get("seconds")),
        ])
    head = ["target", "ARCH", "QEMU", "console", "DTB", "DTB check", "boot", "kernel config+build",
            "busybox build", "boot wall"]
    run = results["run"]
    lines = [BEGIN,
             f"Run `{run['id']}` on {run['host']} ({run['cores']} cores): `{' '.join(run['command'])}`, "
             f"{run['wallSeconds']:.0f} s wall, {run['cpuSeconds']:.0f} CPU-s. "
             f"{sum(1 for c in results['cells'] if c['passed'])} of {len(results['cells'])} cells pass. "
             "A busybox build is shared by the cells of one ABI; \"(run ID)\": the step was cached here and the time is "
             "that earlier run's, which built it alongside the others (its wall time includes waiting for job slots).",
             "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append(END)
    text = open(document).read() if os.path.exists(document) else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        sys.exit(f"{document} has no {BEGIN} ... {END} section")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    open(document, "w").write(before + "\n".join(lines) + after)
    print(f"{document}: {len(rows)} boards from {run_directory}")


if __name__ == "__main__":
    args = sys.argv[1:]
    doc = "docs/boards.md"
    if args[:1] == ["--doc"]:
        doc, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    main(args[0], args[1:], doc)
