"""GENERATED from ``carbook_sdk/_async/_service.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

What every service of the async client shares: the client it belongs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Carbook

__all__ = ["Service"]


class Service:
    def __init__(self, client: Carbook) -> None:
        self._c = client
