"""Run a command from a small process and write its wall seconds, CPU seconds and peak RSS.

    python -S bench/launch.py REPORT CMD [ARG ...]

Why: Linux keeps a process's peak RSS across exec, and a child forked from a benchmark that
holds 60 MB starts at 60 MB: `os.wait4` in the benchmark itself would report at least that
for every child, however small. Forked from this process (a few MB), the child's peak is its
own. The timing starts after this process has started, so it is the command's alone.

REPORT gets one line: wall seconds, CPU seconds (user + sys), peak RSS in KiB (ru_maxrss,
in bytes on macOS). The exit code is the command's.

CPU seconds are the whole process tree's: on Linux this process adopts the command's
orphaned descendants (a subreaper), so ragidx's worker processes, forked by a fork server
that outlives the command by a moment, are waited for and counted too. Peak RSS is the
largest single process's (the command's own, in practice), not a sum. Wall seconds end
when the command exits.
"""

from __future__ import annotations

import os
import resource
import sys
import time


def main() -> int:
    report, cmd = sys.argv[1], sys.argv[2:]
    _adopt_orphans()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    while True:  # descendants left behind, adopted: their CPU counts too
        try:
            os.wait()
        except ChildProcessError:
            break
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max(tree.ru_utime + tree.ru_stime, usage.ru_utime + usage.ru_stime)
    with open(report, "w") as out:
        out.write(f"{wall} {cpu} {usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


def _adopt_orphans() -> None:
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_child_subreaper = 36
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def command(report: str | os.PathLike[str], cmd: list[str]) -> list[str]:
    """`cmd`, to be run through this launcher."""
    return [sys.executable, "-S", __file__, os.fspath(report), *cmd]


def result(report: str | os.PathLike[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and ru_maxrss of the command, from its report."""
    with open(report) as f:
        wall, cpu, rss = f.read().split()
    return float(wall), float(cpu), int(rss)


if __name__ == "__main__":
    sys.exit(main())
