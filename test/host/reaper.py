#!/usr/bin/env python3
"""Runs a self-daemonizing program (libvirtd --daemon) under a child subreaper.

    reaper.py PIDFILE -- PROGRAM [ARG...]

daemons.sh starts the harness libvirtd through it. libvirtd daemonizes, and so do the
QEMU processes it starts: orphans, they would be adopted by PID 1. In this container
PID 1 reaps its adopted children only every second or two, and `virsh destroy` waits
for the QEMU process to be gone, zombie included: every destroy took 1.5 s longer than
QEMU needed to exit. A subreaper (prctl PR_SET_CHILD_SUBREAPER) adopts those orphans
instead, and this one reaps each the moment it exits.

It forks into the background and records its pid in PIDFILE; the foreground process
exits with PROGRAM's own exit status once PROGRAM returns (libvirtd --daemon returns
when its daemon is up), so the caller sees a failed start as before. The reaper exits
when its last descendant is gone, or on SIGTERM (its orphans then go to PID 1 again).
Its process name is vmenv-reaper, which teardown.sh looks for.
"""
import ctypes
import os
import sys

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, arg: int | bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: reaper.py PIDFILE -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    pidfile, program = argv[1], argv[3:]
    status_r, status_w = os.pipe()
    if os.fork() > 0:
        # Foreground: PROGRAM's exit status, as the reaper reports it (nothing: it died).
        os.close(status_w)
        report = os.read(status_r, 16)
        return int(report) if report.strip() else 1

    os.close(status_r)
    os.setsid()
    os.chdir("/")
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_NAME, b"vmenv-reaper")
        with open(pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(pidfile + ".tmp", pidfile)
        child = os.fork()
        if child == 0:
            os.close(status_w)
            try:
                os.execvp(program[0], program)
            finally:
                os._exit(127)
    except OSError as e:
        print(f"reaper.py: {e}", file=sys.stderr)
        os.write(status_w, b"1")
        return 1

    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0  # nothing left to reap
        except InterruptedError:
            continue
        if pid == child and status_w >= 0:
            code = os.waitstatus_to_exitcode(status)
            os.write(status_w, str(code if code >= 0 else 128 - code).encode())
            os.close(status_w)
            status_w = -1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
