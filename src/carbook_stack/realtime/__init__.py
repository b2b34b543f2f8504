"""Realtime for the local stack: the Phoenix-channel WebSocket service at
``/realtime/v1/websocket`` (Broadcast, Broadcast from the database, Presence).

The supervisor starts it as its own process (``python -m carbook_stack.realtime
STACK_JSON``) through :class:`RealtimePart`, its one hook into ``manager``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..settings import StackSettings

__all__ = ["RealtimePart"]


@dataclass(frozen=True)
class RealtimePart:
    """What the supervisor needs to run the service: its command, its health URL."""

    settings: StackSettings
    name: str = "realtime"
    #: In the process's command line: how a pid file's process is known to be ours.
    marker: str = "carbook_stack.realtime"

    @property
    def enabled(self) -> bool:
        return self.settings.realtime_enabled

    def command(self, state_file: Path) -> list[str]:
        return [sys.executable, "-m", self.marker, str(state_file)]

    @property
    def health_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.realtime_port}/health"

    @property
    def url(self) -> str:
        return f"ws://{self.settings.host}:{self.settings.realtime_port}/realtime/v1/websocket"
