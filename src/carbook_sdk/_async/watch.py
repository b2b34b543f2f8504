"""The live listing (async): ``cars.watch()`` over Supabase Realtime's ``cars:availability``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import connect

from .._concurrency import receive_within
from .._translate import RealtimeRefusal
from ..errors import CarbookConnectionError, SessionExpiredError
from ..live import AVAILABILITY_TOPIC, REPLAY_LIMIT, AvailabilityEvent, Listing, parse_broadcast
from ._service import AsyncService

__all__ = ["AsyncWatch"]

TOPIC = f"realtime:{AVAILABILITY_TOPIC}"
#: Phoenix heartbeats, as the Realtime clients send them (realtime-py: 25 s).
HEARTBEAT = 25.0
#: Connection attempts in a row before watching gives up.
MAX_ATTEMPTS = 10
#: How long replayed messages are waited for after a rejoin.
REPLAY_WAIT = 0.3


class _ChannelEnded(Exception):
    """Realtime closed the channel (an expired token, a shutdown): join again."""


class AsyncWatch(AsyncService):
    """One watcher: a Phoenix channel on ``cars:availability``, joined again after every
    loss, and the listing it has shown (``live.Listing``)."""

    _ref = 0

    def _url(self) -> str:
        s = self._c.settings
        base = s.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/")
        return f"{base}/realtime/v1/websocket?apikey={quote(s.key)}&vsn=1.0.0"

    async def _send(self, ws: Any, topic: str, event: str, payload: Any) -> str:
        self._ref += 1
        ref = str(self._ref)
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref}
        await self._c._call(ws.send, json.dumps(frame))
        return ref

    async def _next(self, ws: Any, timeout: float) -> dict[str, Any]:
        """The next message; TimeoutError when none came in ``timeout`` seconds."""
        raw = await self._c._call(receive_within, ws, timeout)
        message = json.loads(raw)
        return message if isinstance(message, dict) else {}

    async def _join(self, ws: Any, listing: Listing) -> list[dict[str, Any]]:
        """Join the channel; what arrived before the reply (kept, in order)."""
        payload: dict[str, Any] = {"config": listing.join_config()}
        token = await self._c._session_token()
        if token:
            payload["access_token"] = token
        ref = await self._send(ws, TOPIC, "phx_join", payload)
        early: list[dict[str, Any]] = []
        while True:
            message = await self._next(ws, 10.0)
            if message.get("event") == "phx_reply" and message.get("ref") == ref:
                reply = message.get("payload") or {}
                if reply.get("status") != "ok":
                    reason = (reply.get("response") or {}).get("reason", "refused")
                    raise RealtimeRefusal(str(reason))
                return early
            early.append(message)

    async def _listing(self) -> list[Any]:
        cars: list[Any] = []
        cursor = None
        while True:
            page = await self._c.cars.list_available(100, cursor=cursor)
            cars.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return cars

    def _heard(self, message: dict[str, Any], listing: Listing) -> tuple[AvailabilityEvent | None, bool]:
        """The event a message carries if it is new, and whether it was replayed."""
        if message.get("topic") != TOPIC:
            return None, False
        event = message.get("event")
        if event == "phx_close" or (
            event == "system" and (message.get("payload") or {}).get("status") == "error"
        ):
            raise _ChannelEnded
        if event != "broadcast":
            return None, False
        parsed = parse_broadcast(message.get("payload"))
        if parsed is None:
            return None, False
        change, mid, replayed = parsed
        return (change if listing.accept(change, mid) else None), replayed

    async def _connect(self) -> Any:
        try:
            return await self._c._call(connect, self._url(), open_timeout=10)
        except TimeoutError:
            raise CarbookConnectionError(
                f"timed out connecting to Realtime at {self._c.settings.url}",
                hint="Is the stack running? `carbook stack start` starts the local one.",
            ) from None

    async def events(self, *, reconnect: bool = True) -> AsyncIterator[AvailabilityEvent]:
        listing = Listing()
        started = False
        attempts = 0
        while True:
            try:
                async with await self._connect() as ws:
                    early = await self._join(ws, listing)
                    attempts = 0
                    pending = list(early)
                    if not started:
                        read_at = datetime.now(UTC)
                        cars = await self._listing()
                        for listed in listing.start(cars, read_at):
                            yield listed
                        started = True
                    else:
                        replayed = 0
                        try:
                            while True:
                                message = await self._next(ws, REPLAY_WAIT)
                                pending.append(message)
                        except TimeoutError:
                            pass
                        for message in pending:
                            replayed += bool(
                                ((message.get("payload") or {}).get("meta") or {}).get("replayed")
                            )
                        if replayed >= REPLAY_LIMIT:
                            # The replay may have left changes out: say how the listing differs.
                            cars = await self._listing()
                            for listed in listing.resync(cars):
                                yield listed
                    for message in pending:
                        change, _ = self._heard(message, listing)
                        if change is not None:
                            yield change
                    while True:
                        try:
                            message = await self._next(ws, HEARTBEAT)
                        except TimeoutError:
                            await self._send(ws, "phoenix", "heartbeat", {})
                            continue
                        change, _ = self._heard(message, listing)
                        if change is not None:
                            yield change
            except (CarbookConnectionError, _ChannelEnded, SessionExpiredError) as exc:
                attempts += 1
                if (
                    not reconnect
                    or not started
                    or attempts > MAX_ATTEMPTS
                    or (isinstance(exc, SessionExpiredError) and attempts > 1)
                ):
                    if isinstance(exc, _ChannelEnded):
                        raise CarbookConnectionError("Realtime closed the availability channel") from None
                    raise
            await asyncio.sleep(min(0.25 * 2 ** (attempts - 1), 10.0) if attempts else 0)
