"""Run a command as a child subreaper: what its processes orphan is reaped here.

usage: python3 reaper.py COMMAND [ARG...]

A process whose parent dies is handed to the nearest subreaper, else to PID 1. On a
machine whose PID 1 is not an init that reaps (a CI container's agent), such orphans stay
zombies for good: dead, but listed. The test phase runs under this, so that a daemon's
workers killed with it by a test are reaped here, and what is left in the test session
when the tests end is what still runs. Exits with the command's status (128 + signal if a
signal ended it); SIGINT, SIGTERM and SIGHUP are passed on to the command.
"""
import ctypes
import errno
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    if not argv:
        sys.exit("usage: reaper.py COMMAND [ARG...]")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print(f"reaper: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}", file=sys.stderr)
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            print(f"reaper: {argv[0]}: {e.strerror}", file=sys.stderr)
            os._exit(127)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    status = None
    while status is None:
        try:
            pid, raw = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(raw)
    # Orphans already dead are reaped; orphans still running are left for the caller to
    # name and kill (they stay in this session).
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            raise
        if pid == 0:
            break
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main(sys.argv[1:])
