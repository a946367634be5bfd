"""Prints the device configuration lava-run needs for a `kmatrix lava` qemu job: what LAVA's
qemu.jinja2 (lava-server, not packaged with the dispatcher) renders from the job's context
(arch, machine, cpu, memory, extra_options), written out by hand for a dispatcher alone."""
import sys
import yaml

job = yaml.safe_load(open(sys.argv[1]))
context = job["context"]
options = ["-nographic", "-machine " + context["machine"]]
if "cpu" in context:
    options.append("-cpu " + context["cpu"])
options.append("-m %d" % context["memory"])
extra = context.get("extra_options", [])
options += [str(o) for o in extra]
device = {
    "device_type": "qemu",
    "available_architectures": [context["arch"]],
    "constants": {
        "kernel-start-message": "Linux version [0-9]",
        "shutdown-message": "The system is going down for reboot NOW",
        "default-shell-prompt": "lava-test: # ",
        "failure_retry": 1,
        "boot_retry": 1,
        "spawn_maxread": 4092,
        "posix": {"lava_test_sh_cmd": "/bin/sh", "lava_test_results_dir": "/lava-%s",
                  "lava_test_shell_file": "~/.bashrc"},
    },
    "actions": {
        "deploy": {"methods": {"image": {"parameters": {"guest": {"size": 512, "interface": "ide", "driveid": "lavatest"}}}}},
        "boot": {"connections": {"serial": None},
                 "methods": {"qemu": {"parameters": {"command": "qemu-system-" + context["arch"], "options": options}}}},
    },
    "timeouts": {"actions": {}, "connections": {}},
}
yaml.safe_dump(device, sys.stdout, default_flow_style=False)
