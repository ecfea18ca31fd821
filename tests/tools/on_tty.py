#!/usr/bin/env python3
"""Runs a command with its stderr on a terminal, pausing it once it is well into a file.

    on_tty.py [--no-tty] OUT WATCH -- COMMAND...

COMMAND runs with stdout discarded and stderr on a new pseudo-terminal (with --no-tty: on
the file OUT itself); what the terminal showed is written to OUT.  Once COMMAND has read
2 MiB of the file WATCH (its file offset, /proc/PID/fdinfo), it is stopped for 1.2 s
(SIGSTOP, SIGCONT), so that its run lasts past any one-second period whatever the
machine.  Exits with COMMAND's status; 100 when WATCH was never reached.
"""

import os
import pty
import signal
import subprocess
import sys
import threading
import time


def pause_when_read(pid, watch, done):
    watch = os.path.realpath(watch)
    while not done.is_set():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") != watch:
                        continue
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        pos = int(f.readline().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if pos >= 2 << 20:
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(1.2)
                    os.kill(pid, signal.SIGCONT)
                    return True
        except OSError:
            pass
        time.sleep(0.002)
    return False


def main():
    args = sys.argv[1:]
    no_tty = args and args[0] == "--no-tty"
    if no_tty:
        args = args[1:]
    out, watch, sep, cmd = args[0], args[1], args[2], args[3:]
    assert sep == "--" and cmd
    chunks = []
    if no_tty:
        err = open(out, "wb")
        master = None
    else:
        master, slave = pty.openpty()
        err = slave
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    if no_tty:
        err.close()
    else:
        os.close(slave)

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            chunks.append(b)

    reader = None
    if master is not None:
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    done = threading.Event()
    paused = []
    watcher = threading.Thread(target=lambda: paused.append(pause_when_read(p.pid, watch, done)))
    watcher.start()
    rc = p.wait()
    done.set()
    watcher.join()
    if reader is not None:
        reader.join(10)
        os.close(master)
        with open(out, "wb") as f:
            f.write(b"".join(chunks))
    if not paused or not paused[0]:
        return 100
    return rc


if __name__ == "__main__":
    sys.exit(main())
