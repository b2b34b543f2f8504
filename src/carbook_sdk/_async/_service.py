"""What every service of the async client shares: the client it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import AsyncCarbook

__all__ = ["AsyncService"]


class AsyncService:
    def __init__(self, client: AsyncCarbook) -> None:
        self._c = client
