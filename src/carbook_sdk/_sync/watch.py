"""GENERATED from ``carbook_sdk/_async/watch.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

The live listing (sync): ``cars.watch()`` over Supabase Realtime's ``cars:availability``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from websockets.sync.client import connect

from .._concurrency import receive_before
from .._translate import RealtimeRefusal
from ..errors import CarbookConnectionError, SessionExpiredError
from ..live import AVAILABILITY_TOPIC, REPLAY_LIMIT, AvailabilityEvent, Listing, parse_broadcast
from ._service import Service

__all__ = ["Watch"]

TOPIC = f"realtime:{AVAILABILITY_TOPIC}"
#: Phoenix heartbeats, as the Realtime clients send them (realtime-py: 25 s).
HEARTBEAT = 25.0
#: Connection attempts in a row before watching gives up.
MAX_ATTEMPTS = 10
#: How long replayed messages are waited for after a rejoin.
REPLAY_WAIT = 0.3


class _ChannelEnded(Exception):
    """Realtime closed the channel (an expired token, a shutdown): join again."""


class Watch(Service):
    """One watcher: a Phoenix channel on ``cars:availability``, joined again after every
    loss, and the listing it has shown (``live.Listing``)."""

    _ref = 0

    def _url(self) -> str:
        s = self._c.settings
        base = s.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/")
        return f"{base}/realtime/v1/websocket?apikey={quote(s.key)}&vsn=1.0.0"

    def _send(self, ws: Any, topic: str, event: str, payload: Any) -> str:
        self._ref += 1
        ref = str(self._ref)
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref}
        self._c._call(ws.send, json.dumps(frame))
        return ref

    def _next(self, ws: Any, timeout: float) -> dict[str, Any]:
        """The next message; TimeoutError when none came in ``timeout`` seconds."""
        raw = self._c._call(receive_before, ws, timeout)
        message = json.loads(raw)
        return message if isinstance(message, dict) else {}

    def _join(self, ws: Any, listing: Listing) -> list[dict[str, Any]]:
        """Join the channel; what arrived before the reply (kept, in order)."""
        payload: dict[str, Any] = {"config": listing.join_config()}
        token = self._c._session_token()
        if token:
            payload["access_token"] = token
        ref = self._send(ws, TOPIC, "phx_join", payload)
        early: list[dict[str, Any]] = []
        while True:
            message = self._next(ws, 10.0)
            if message.get("event") == "phx_reply" and message.get("ref") == ref:
                reply = message.get("payload") or {}
                if reply.get("status") != "ok":
                    reason = (reply.get("response") or {}).get("reason", "refused")
                    raise RealtimeRefusal(str(reason))
                return early
            early.append(message)

    def _listing(self) -> list[Any]:
        cars: list[Any] = []
        cursor = None
        while True:
            page = self._c.cars.list_available(100, cursor=cursor)
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

    def _connect(self) -> Any:
        try:
            return self._c._call(connect, self._url(), open_timeout=10)
        except TimeoutError:
            raise CarbookConnectionError(
                f"timed out connecting to Realtime at {self._c.settings.url}",
                hint="Is the stack running? `carbook stack start` starts the local one.",
            ) from None

    def events(self, *, reconnect: bool = True) -> Iterator[AvailabilityEvent]:
        listing = Listing()
        started = False
        attempts = 0
        while True:
            try:
                with self._connect() as ws:
                    early = self._join(ws, listing)
                    attempts = 0
                    pending = list(early)
                    if not started:
                        read_at = datetime.now(UTC)
                        cars = self._listing()
                        for listed in listing.start(cars, read_at):
                            yield listed
                        started = True
                    else:
                        replayed = 0
                        try:
                            while True:
                                message = self._next(ws, REPLAY_WAIT)
                                pending.append(message)
                        except TimeoutError:
                            pass
                        for message in pending:
                            replayed += bool(
                                ((message.get("payload") or {}).get("meta") or {}).get("replayed")
                            )
                        if replayed >= REPLAY_LIMIT:
                            # The replay may have left changes out: say how the listing differs.
                            cars = self._listing()
                            for listed in listing.resync(cars):
                                yield listed
                    for message in pending:
                        change, _ = self._heard(message, listing)
                        if change is not None:
                            yield change
                    while True:
                        try:
                            message = self._next(ws, HEARTBEAT)
                        except TimeoutError:
                            self._send(ws, "phoenix", "heartbeat", {})
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
            time.sleep(min(0.25 * 2 ** (attempts - 1), 10.0) if attempts else 0)
