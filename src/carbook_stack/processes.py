"""Processes of the stack's parts: is one alive, and stop one for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["is_zombie", "kill_orphans", "pid_alive", "terminate"]


def is_zombie(pid: int) -> bool:
    """Whether the process has exited and waits to be reaped (``Z`` in ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def pid_alive(pid: int | None) -> bool:
    """Whether the process runs (a signal could reach it); a zombie does not run."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a child of ours, or one nobody reaps) is not alive.
    if is_zombie(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def terminate(pid: int | None, timeout: float = 5.0) -> None:
    """SIGTERM, wait, SIGKILL: PostgREST may ignore a first SIGTERM."""
    if not pid_alive(pid):
        return
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig) if _is_group_leader(pid) else os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def kill_orphans(pgid: int | None, marker: str) -> int:
    """SIGKILL what is left of a part's process group after its leader died: nginx's
    workers outlive a killed master and keep its port. Only processes of that group whose
    command line names ``marker`` are touched. Returns how many were signalled."""
    if not pgid:
        return 0
    hit: list[int] = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or int(entry.name) == os.getpid():
                continue
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            hit.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    # Gone, and their sockets closed, before the caller binds the port again.
    deadline = time.monotonic() + 5.0
    while any(pid_alive(pid) for pid in hit) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(hit)
