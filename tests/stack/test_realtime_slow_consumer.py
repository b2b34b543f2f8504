"""A client that stops reading is dropped, not buffered for without end: one socket that
broadcasts to itself and never reads would otherwise grow the Realtime service's memory
by every message, for as long as it stays connected. The other members of the room hear
every message all the while."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from carbook_stack.manager import LocalStack
from carbook_stack.realtime.channels import SLOW_CONSUMER_BYTES

from ..helpers import Raw

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: One broadcast's payload, and how many: together well past what the kernel's socket
#: buffers (client, nginx, service) and the service's own limit hold.
BLOB = 1 << 20
MESSAGES = 3 * SLOW_CONSUMER_BYTES // BLOB + 24


def _subscribers(stack: LocalStack) -> int:
    s = stack.settings
    reply = httpx.get(f"http://{s.host}:{s.realtime_port}/api/health", timeout=5)
    return int(reply.json()["subscribers"])


def test_a_client_that_never_reads_is_dropped_and_the_room_still_hears_everything(
    stack: LocalStack,
) -> None:
    s = stack.settings
    url = f"ws://{s.host}:{s.api_port}/realtime/v1/websocket?apikey={s.publishable_key}&vsn=1.0.0"
    topic = f"realtime:slow-{uuid.uuid4().hex[:8]}"
    log = s.logs_dir / "realtime.log"
    logged_before = log.read_text(errors="replace").count("too slow") if log.exists() else 0

    async def scenario() -> tuple[int, int, int, list[int]]:
        before = _subscribers(stack)
        # The stalled client: a small receive buffer, websockets stops reading its socket
        # once one frame waits unread (max_queue=1), and it sends no pings of its own
        # (their unread pongs would make the client close the connection itself).
        raw_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw_socket.connect((s.host, s.api_port))
        async with (
            connect(url, sock=raw_socket, max_queue=1, max_size=None, ping_interval=None) as slow_ws,
            connect(url, max_size=None) as listener_ws,
        ):
            slow, listener = Raw(slow_ws), Raw(listener_ws)
            assert (await slow.join(topic, {"config": {"broadcast": {"self": True}}}))["status"] == "ok"
            assert (await listener.join(topic, {"config": {"broadcast": {"self": False}}}))["status"] == "ok"
            joined = _subscribers(stack)
            heard: list[int] = []

            async def listen() -> None:
                while True:
                    msg = json.loads(await listener_ws.recv())
                    if msg["event"] == "broadcast":
                        heard.append(msg["payload"]["payload"]["i"])

            listening = asyncio.create_task(listen())
            blob = "x" * BLOB
            with contextlib.suppress(ConnectionClosed):  # dropped while still sending
                for i in range(MESSAGES):
                    payload = {"type": "broadcast", "event": "big", "payload": {"i": i, "blob": blob}}
                    await slow.send(topic, "broadcast", payload)
                    # Paced, so the listener (on this same event loop) keeps up: only the
                    # stalled client may fall 8 MiB behind.
                    paced = time.monotonic() + 5
                    while len(heard) < i and time.monotonic() < paced:
                        await asyncio.sleep(0.005)
            deadline = time.monotonic() + 30
            while _subscribers(stack) > joined - 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            after = _subscribers(stack)
            # What the stalled client reads now ends in a lost connection, never a hang.
            if after < joined:
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(slow_ws.recv(), 30)
            # The room lives on: a message sent after the drop is heard too.
            async with connect(url) as late_ws:
                late = Raw(late_ws)
                await late.join(topic, {"config": {"broadcast": {"self": False}}})
                await late.send(
                    topic, "broadcast", {"type": "broadcast", "event": "big", "payload": {"i": -1}}
                )
                deadline = time.monotonic() + 30
                while -1 not in heard and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            listening.cancel()
            return before, joined, after, heard

    before, joined, after, heard = asyncio.run(scenario())
    assert joined == before + 2
    assert after == joined - 1, "the stalled client is still subscribed"
    # Every message the service took from the stalled client reached the listener, in
    # order, and they were past the limit; then the late one.
    assert heard[-1] == -1, heard[-5:]
    assert heard[:-1] == list(range(len(heard) - 1))
    assert len(heard) - 1 > SLOW_CONSUMER_BYTES // BLOB
    logged = log.read_text(errors="replace").count("too slow") - logged_before
    assert logged >= 1, "the service does not say why it dropped the connection"
