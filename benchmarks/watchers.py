"""The fan-out benchmark's watchers: a raw WebSocket client of the stack's Realtime, and
the child processes that hold many of them.

Raw (an ``asyncio.Protocol``: the handshake by hand, frames cut out of the bytes, a
payload's JSON parsed once per message, not once per socket), not ``websockets`` and not
the SDK: a Python client's per-frame work (frame objects, UTF-8 checks, a queue and a
task wake-up per message) would, a thousand times per booking, be timed as the server's
latency.

A child process (``python -m benchmarks.watchers API_URL APIKEY N``) opens N sockets,
then obeys JSON lines on stdin (``join``, ``report``) and answers on stdout, saying
``complete`` the moment all its N watchers have heard a broadcast, so the benchmark
knows when to send the next one. ``Fleet`` is several such children seen as one.

Every process reads CLOCK_MONOTONIC, one clock for the whole machine, so a send time in
the benchmark's process and a receipt time in a child compare directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from carbook_stack.manager import LocalStack

__all__ = ["Fleet", "Watchers", "broadcast_key", "now"]

ROOT = Path(__file__).resolve().parents[1]


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# The watcher side: a raw WebSocket client ------------------------------------------------------
def _frame(text: str) -> bytes:
    """A masked text frame (a client must mask its frames, RFC 6455 5.3)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


class _Socket(asyncio.Protocol):
    """One WebSocket connection: every complete frame goes to ``on_frame`` with the time
    its bytes arrived."""

    def __init__(self, index: int, request: bytes, on_frame: Callable[[_Socket, int, bytes, float], None]):
        self.index = index
        self.request = request
        self.on_frame = on_frame
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        t = now()
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[: buf.find(b"\r\n")].split(b" ")
            if len(status) < 2 or status[1] != b"101":
                self.open.set_exception(ConnectionError(buf[:end].decode("latin-1")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.open.set_result(None)
            buf = buf[end + 4 :]
        while len(buf) >= 2:
            length, start = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                break
            self.on_frame(self, buf[0] & 0x0F, buf[start : start + length], t)
            buf = buf[start + length :]
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_frame(json.dumps(message)))


def broadcast_key(body: dict[str, Any]) -> str:
    """What names one broadcast: its event and its payload's ``id`` (a booking's car id)."""
    inner = body.get("payload")
    return f"{body.get('event')}:{inner.get('id') if isinstance(inner, dict) else None}"


class Watchers:
    """n watchers in this process, and when each heard each broadcast."""

    def __init__(self, api_url: str, apikey: str, n: int, on_complete: Callable[[str], None] | None = None):
        url = urlsplit(api_url)
        assert url.hostname and url.port, api_url
        self.host, self.port, self.n = url.hostname, url.port, n
        self.path = f"/realtime/v1/websocket?apikey={quote(apikey)}&vsn=1.0.0"
        self.on_complete = on_complete
        self.sockets: list[_Socket] = []
        #: key -> [(socket index, receipt time)]
        self.receipts: dict[str, list[tuple[int, float]]] = {}
        # The server encodes a broadcast once for every socket: its bytes name it, so its
        # JSON is parsed once, not once per watcher.
        self._keys: dict[bytes, str] = {}
        self._replies: dict[str, dict[int, str]] = {}
        self._replied: dict[str, asyncio.Event] = {}

    def _request(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    async def connect(self) -> list[str]:
        """Open every socket (a few at a time: a burst of connects overflows nginx's listen
        backlog); the reasons of those that failed."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(50)
        failed: list[str] = []

        async def one(i: int) -> None:
            async with gate:
                sock = _Socket(i, self._request(), self._frame)
                try:
                    await loop.create_connection(lambda: sock, self.host, self.port)
                    await asyncio.wait_for(sock.open, 30)
                    self.sockets.append(sock)
                except (OSError, TimeoutError) as exc:
                    failed.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(i) for i in range(self.n)))
        return failed

    async def join(self, topic: str, private: bool, timeout: float = 120) -> list[str]:
        """Every socket joins ``topic``; the refusals (and the sockets that got no reply)."""
        ref = f"join-{len(self._replies) + 1}"
        self._replies[ref], self._replied[ref] = {}, asyncio.Event()
        config = {
            "broadcast": {"self": False, "ack": False},
            "presence": {"key": "", "enabled": False},
            "postgres_changes": [],
            "private": private,
        }
        for sock in self.sockets:
            sock.send(
                {
                    "topic": topic,
                    "event": "phx_join",
                    "payload": {"config": config},
                    "ref": ref,
                    "join_ref": ref,
                }
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._replied[ref].wait(), timeout)
        got = self._replies[ref]
        refused = [reason for reason in got.values() if reason != "ok"]
        return refused + ["no reply"] * (len(self.sockets) - len(got))

    def _frame(self, sock: _Socket, opcode: int, payload: bytes, t: float) -> None:
        if opcode != 1:  # a close or a ping: never sent by the server while it runs
            return
        key = self._keys.get(payload)
        if key is None:
            message = json.loads(payload)
            body = message.get("payload")
            if message.get("event") != "broadcast" or not isinstance(body, dict):
                return self._reply(sock, message)
            key = self._keys[payload] = broadcast_key(body)
        got = self.receipts.setdefault(key, [])
        got.append((sock.index, t))
        if len(got) == len(self.sockets) and self.on_complete is not None:
            self.on_complete(key)

    def _reply(self, sock: _Socket, message: dict[str, Any]) -> None:
        replies = self._replies.get(str(message.get("ref")))
        if message.get("event") != "phx_reply" or replies is None:
            return
        body = message.get("payload") or {}
        replies[sock.index] = (
            "ok" if body.get("status") == "ok" else str((body.get("response") or {}).get("reason"))
        )
        if len(replies) == len(self.sockets):
            self._replied[str(message.get("ref"))].set()

    def close(self) -> None:
        for sock in self.sockets:
            if sock.transport is not None:
                sock.transport.close()


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _child(api_url: str, apikey: str, n: int) -> None:
    """A child process's n watchers, driven by JSON lines on stdin, answering on stdout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))
    watchers = Watchers(api_url, apikey, n, lambda key: _emit({"complete": key}))
    failed = await watchers.connect()
    # Nothing the watchers keep makes a cycle: a collection pass over their receipts
    # would only be timed as latency.
    gc.disable()
    _emit({"connected": len(watchers.sockets), "failed": failed})
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    try:
        while line := await commands.readline():
            command = json.loads(line)
            if command["do"] == "join":
                _emit(
                    {
                        "joined": command["topic"],
                        "refused": await watchers.join(command["topic"], command["private"]),
                    }
                )
            elif command["do"] == "report":
                _emit({"report": watchers.receipts})
                break
    finally:
        watchers.close()


# The benchmark's side: child processes -------------------------------------------------------------------------
class _Child:
    """A child process holding some of the watchers."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.complete: dict[str, asyncio.Event] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, stack: LocalStack, n: int) -> _Child:
        s = stack.settings
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.watchers", s.api_url, s.anon_key, str(n),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
            limit=1 << 28,  # the report is one line of every receipt
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "complete" in message:
                self.completed(message["complete"]).set()
            else:
                await self.lines.put(message)
        await self.lines.put({"exited": self.proc.returncode})

    def completed(self, key: str) -> asyncio.Event:
        return self.complete.setdefault(key, asyncio.Event())

    async def expect(self, what: str, timeout: float) -> dict[str, Any]:
        message = await asyncio.wait_for(self.lines.get(), timeout)
        if what not in message:
            raise RuntimeError(f"a watcher process said {message} when {what!r} was expected")
        return message

    async def command(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self.reader.cancel()


class Fleet:
    """N watchers over some child processes, seen as one."""

    def __init__(self, children: list[_Child], n: int) -> None:
        self.children, self.n = children, n
        self.duplicates = 0

    @classmethod
    async def start(cls, stack: LocalStack, n: int, procs: int) -> Fleet:
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        fleet = cls([await _Child.start(stack, share) for share in shares if share], n)
        connected = [await c.expect("connected", 300) for c in fleet.children]
        failed = [f for m in connected for f in m["failed"]]
        if failed:
            await fleet.stop()
            raise RuntimeError(f"{len(failed)} of {n} watchers could not connect: {sorted(set(failed))[:3]}")
        return fleet

    async def join(self, topic: str, private: bool) -> None:
        for c in self.children:
            await c.command(do="join", topic=topic, private=private)
        refused = [r for c in self.children for r in (await c.expect("joined", 300))["refused"]]
        if refused:
            raise RuntimeError(
                f"{len(refused)} of {self.n} watchers could not join {topic}: {sorted(set(refused))[:3]}"
            )

    async def heard(self, key: str, timeout: float) -> bool:
        """Whether every watcher heard ``key`` within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                for c in self.children:
                    await c.completed(key).wait()
            return True
        except TimeoutError:
            return False

    async def report(self) -> dict[str, list[float]]:
        """key -> every watcher's receipt time; the children exit."""
        receipts: dict[str, list[float]] = {}
        self.duplicates = 0
        for c in self.children:
            await c.command(do="report")
        for c in self.children:
            for key, got in (await c.expect("report", 300))["report"].items():
                first: dict[int, float] = {}
                for i, t in got:
                    first.setdefault(i, t)
                self.duplicates += len(got) - len(first)
                receipts.setdefault(key, []).extend(first.values())
        return receipts

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children]

    async def stop(self) -> None:
        for c in self.children:
            await c.stop()


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))
