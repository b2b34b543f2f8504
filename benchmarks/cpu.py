"""CPU seconds spent by each part of a running local stack, and the memory each holds,
read from /proc (Linux).

A part's figure is its process and every process below it (PostgreSQL's backends,
nginx's workers), live ones by their own time and ended ones through their parent's
``cutime``/``cstime``: so a backend that came and went between two readings counts.
Used to say what limits a benchmark: which part burns how much CPU per unit of work, and
how many of the machine's cores the whole stack kept busy; and (``stack_rss``) what a
part's memory grows by per connection it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from carbook_stack.manager import LocalStack

__all__ = ["PARTS", "cpu_of", "stack_cpu", "stack_rss"]

#: The stack's parts, by the pid file each writes (PostgreSQL: its postmaster.pid).
PARTS = ("postgres", "postgrest", "app", "realtime", "nginx")
_PIDFILES = {"postgrest": "postgrest.pid", "app": "app.pid", "realtime": "realtime.pid", "nginx": "nginx.pid"}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _roots(stack: LocalStack) -> dict[str, int]:
    state = stack.settings.state_dir
    files = {part: state / name for part, name in _PIDFILES.items()}
    if not files["nginx"].exists():
        files["nginx"] = state / "nginx" / "nginx.pid"  # nginx's own, beside its config
    files["postgres"] = state / "db" / "pgdata" / "postmaster.pid"
    roots = {}
    for part, path in files.items():
        try:
            roots[part] = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return roots


def _table() -> dict[int, tuple[int, float]]:
    """Every process: (parent pid, CPU seconds of it and of its reaped children)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[1] is ppid; utime, stime, cutime, cstime are fields 14-17 of stat(5).
        table[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / _TICK)
    return table


def _trees(stack: LocalStack, table: dict[int, tuple[int, float]]) -> dict[str, list[int]]:
    """Each running part's processes: its root and everything below it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for part, root in _roots(stack).items():
        if root not in table:
            continue
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        out[part] = found
    return out


def stack_cpu(stack: LocalStack) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack ({} where /proc is missing)."""
    if not Path("/proc/self/stat").exists():
        return {}
    table = _table()
    return {part: sum(table[pid][1] for pid in pids) for part, pids in _trees(stack, table).items()}


def cpu_of(pids: list[int]) -> float:
    """CPU seconds used so far by these processes (a benchmark's own clients), 0 for a
    process already gone."""
    if not Path("/proc/self/stat").exists():
        return 0.0
    table = _table()
    return sum(table[pid][1] for pid in pids if pid in table)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, or a kernel thread


def stack_rss(stack: LocalStack) -> dict[str, int]:
    """Resident bytes of each part of the stack, its processes summed ({} without /proc).
    PostgreSQL's backends share their buffers, so its sum counts shared pages more than
    once: compare its deltas, not its total."""
    if not Path("/proc/self/stat").exists():
        return {}
    return {part: sum(_rss(pid) for pid in pids) for part, pids in _trees(stack, _table()).items()}
