"""Realtime fan-out (issue #24): a booking committed while N watchers hold the private
``cars:availability`` channel through the API port (nginx), timed from the booker's
COMMIT to each watcher's receipt; a burst of bookings for events per second; the
stack's CPU per delivery and memory per connection.

The booking is the real one: ``public.book_car_atomic`` as a signed-in user (the role
and claims PostgREST sets), whose trigger calls ``realtime.send``; the Realtime service
hears the committed ``realtime.messages`` row by NOTIFY and fans it out. The commit time
is read right after COMMIT returns to the booker, so a latency can even be slightly
negative (the NOTIFY goes out at commit, before the booker hears the commit's reply).

Baselines in the same run:
- the floor: the same bookings heard by 1 watcher alone, so what the N-1 others cost
  shows against the path every message takes (trigger, NOTIFY, Realtime, nginx);
- Broadcast over the socket, Supabase's second published anchor: a client's broadcast
  on a public topic to the same N watchers (and to 1), timed from the sender's write,
  so the database's share of the path shows too.

The watchers are a raw WebSocket client (an ``asyncio.Protocol``: the handshake by hand,
frames cut out of the bytes, a payload's JSON parsed once per message, not once per
socket), not ``websockets`` and not the SDK: a Python client's per-frame work (frame
objects, UTF-8 checks, a queue and a task wake-up per message) would, a thousand times
per booking, be timed as the server's latency. They are spread over two child
processes: one process's event loop handles its sockets one after another, and the
stack's Realtime service is one process too, so two clients can each take a core while
the server is between writes; more would only queue behind the stack on 2 cores. The
clients' CPU is reported beside the stack's, so a run can show the client was not the
limit.

Every process reads CLOCK_MONOTONIC, one clock for the whole machine, so a commit time
here and a receipt time in a child compare directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg

from benchmarks.cpu import cpu_of, stack_cpu, stack_rss
from carbook_stack.manager import LocalStack
from carbook_stack.testing import make_cars, make_users

__all__ = ["TARGET_P50_MS", "TARGET_P99_MS", "bench_fanout"]

#: Supabase's published figures for Broadcast from the database (``realtime.broadcast_changes``
#: on every insert, 10,000 msgs/s): median 46 ms, p99 159 ms.
TARGET_P50_MS = 46.0
TARGET_P99_MS = 159.0
AVAILABILITY = "realtime:cars:availability"
#: A public topic: a client may broadcast to it (nobody may send to the availability topic).
SOCKET_TOPIC = "realtime:bench-fanout"
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


# The benchmark's side -------------------------------------------------------------------------
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
            sys.executable, "-m", "benchmarks.fanout", s.api_url, s.anon_key, str(n),
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


class _Fleet:
    """N watchers over some child processes, seen as one."""

    def __init__(self, children: list[_Child], n: int) -> None:
        self.children, self.n = children, n

    @classmethod
    async def start(cls, stack: LocalStack, n: int, procs: int) -> _Fleet:
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


class _Booker:
    """Bookings as signed-in users make them: ``book_car_atomic`` with the role and claims
    PostgREST sets, one transaction each; the time is read when COMMIT has returned."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], users: list[str]) -> None:
        self.conn, self.users, self.turn = conn, users, 0

    async def book(self, car: str) -> float:
        self.turn += 1
        claims = json.dumps({"sub": self.users[self.turn % len(self.users)], "role": "authenticated"})
        async with self.conn.transaction():
            await self.conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (claims,),
            )
            cur = await self.conn.execute("select public.book_car_atomic(%s)", (car,))
            row = await cur.fetchone()
        committed = now()
        if row is None or row[0].get("code") != "booked":
            raise RuntimeError(f"booking {car}: {row}")
        return committed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 2)


def _latency(sent: dict[str, float], receipts: dict[str, list[float]], n: int) -> dict[str, Any]:
    """Send-to-receipt over every watcher and every event, and how many deliveries failed."""
    ms = [(t - sent[key]) * 1000 for key in sent for t in receipts.get(key, [])]
    spreads = [(max(got) - min(got)) * 1000 for key in sent if (got := receipts.get(key))]
    return {
        "events": len(sent),
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "max_ms": round(max(ms), 2) if ms else 0.0,
        # first watcher to last, per event: what the fan-out itself takes
        "spread_p50_ms": round(statistics.median(spreads), 2) if spreads else 0.0,
        "delivered": len(ms),
        "missing": n * len(sent) - len(ms),
    }


async def _one_by_one(
    fleet: _Fleet, send: Callable[[str], Any], keys: list[tuple[str, str]]
) -> dict[str, float]:
    """Each event alone: sent once every watcher heard the one before."""
    sent = {}
    for arg, key in keys:
        sent[key] = await send(arg)
        await fleet.heard(key, 10)
    return sent


async def _socket_sender(stack: LocalStack) -> tuple[Watchers, Callable[[str], Any]]:
    """A client that joins the public topic and broadcasts to it; its send time."""
    s = stack.settings
    sender = Watchers(s.api_url, s.anon_key, 1)
    if await sender.connect() or await sender.join(SOCKET_TOPIC, private=False):
        raise RuntimeError("the broadcasting client could not join")
    ref = "join-1"

    async def send(n: str) -> float:
        body = {"type": "broadcast", "event": "ping", "payload": {"id": n}}
        frame = {"topic": SOCKET_TOPIC, "event": "broadcast", "payload": body, "ref": None, "join_ref": ref}
        # Read before the write: on shared cores this process can be put aside between
        # the write and a clock read after it, while the watchers already hear it.
        sent = now()
        sender.sockets[0].send(frame)
        return sent

    return sender, send


async def bench_fanout(
    stack: LocalStack, watchers: int, bookings: int, burst: int, procs: int = 2
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    users = [u for u, _ in make_users(stack, 8, f"fan-{tag}")]
    floor_cars, fan_cars, burst_cars = (
        make_cars(stack, k, f"fan-{part}-{tag}")
        for part, k in (("floor", bookings), ("one", bookings), ("burst", burst))
    )
    s = stack.settings
    conns = [await psycopg.AsyncConnection.connect(s.db_url, autocommit=True) for _ in range(4)]
    booker = _Booker(conns[0], users)
    sender, send = await _socket_sender(stack)
    pings = [(f"{tag}-{i}", f"ping:{tag}-{i}") for i in range(2 * bookings)]
    fleet: _Fleet | None = None
    out: dict[str, Any] = {"watchers": watchers, "procs": procs, "bookings": bookings, "burst": burst}
    try:
        # The floor: one watcher alone.
        fleet = await _Fleet.start(stack, 1, 1)
        await fleet.join(AVAILABILITY, private=True)
        await fleet.join(SOCKET_TOPIC, private=False)
        db_sent = await _one_by_one(fleet, booker.book, [(c, f"booked:{c}") for c in floor_cars])
        sock_sent = await _one_by_one(fleet, send, pings[:bookings])
        receipts = await fleet.report()
        out["floor"] = {"db": _latency(db_sent, receipts, 1), "socket": _latency(sock_sent, receipts, 1)}
        await fleet.stop()
        fleet = None

        # N watchers: memory per connection is what joining the availability channel added.
        rss_before = stack_rss(stack)
        began = now()
        fleet = await _Fleet.start(stack, watchers, procs)
        await fleet.join(AVAILABILITY, private=True)
        out["connect_and_join_s"] = round(now() - began, 2)
        await asyncio.sleep(1)  # what the joins left to the allocator settles
        rss_after = stack_rss(stack)
        out["rss_kib_per_connection"] = {
            part: round((rss_after[part] - rss_before.get(part, 0)) / 1024 / watchers, 1)
            for part in ("realtime", "nginx")
            if part in rss_after
        }
        out["realtime_rss_mib"] = round(rss_after.get("realtime", 0) / 2**20, 1)
        await fleet.join(SOCKET_TOPIC, private=False)

        cpu0, client0 = stack_cpu(stack), cpu_of(fleet.pids())
        db_sent = await _one_by_one(fleet, booker.book, [(c, f"booked:{c}") for c in fan_cars])
        cpu1, client1 = stack_cpu(stack), cpu_of(fleet.pids())
        sock_sent = await _one_by_one(fleet, send, pings[bookings:])

        # The burst: bookings committed as fast as four connections can, then every
        # delivery counted until the last watcher heard the last one.
        bookers = [_Booker(c, users) for c in conns]
        burst_sent: dict[str, float] = {}
        cpu2, client2 = stack_cpu(stack), cpu_of(fleet.pids())
        start = now()

        async def book_share(b: _Booker, cars: list[str]) -> None:
            for car in cars:
                burst_sent[f"booked:{car}"] = await b.book(car)

        await asyncio.gather(*(book_share(b, burst_cars[i :: len(bookers)]) for i, b in enumerate(bookers)))
        committed = now()
        for key in burst_sent:
            await fleet.heard(key, max(1.0, 60 - (now() - committed)))
        cpu3, client3 = stack_cpu(stack), cpu_of(fleet.pids())
        receipts = await fleet.report()
        out["duplicates"] = fleet.duplicates
    finally:
        if fleet is not None:
            await fleet.stop()
        sender.close()
        for c in conns:
            await c.close()

    out["db"] = _latency(db_sent, receipts, watchers)
    out["socket"] = _latency(sock_sent, receipts, watchers)
    deliveries = bookings * watchers
    out["cpu_us_per_delivery"] = {
        **{
            part: round((cpu1[part] - cpu0.get(part, 0)) * 1e6 / deliveries, 1)
            for part in ("realtime", "nginx")
            if part in cpu1
        },
        "client": round((client1 - client0) * 1e6 / deliveries, 1),
    }
    out["postgres_ms_per_booking"] = round(
        (cpu1.get("postgres", 0) - cpu0.get("postgres", 0)) * 1000 / bookings, 2
    )
    last = max((t for key in burst_sent for t in receipts.get(key, [])), default=committed)
    b = _latency(burst_sent, receipts, watchers)
    span = max(last - start, 1e-9)
    burst_cpu = {part: round(cpu3[part] - cpu2.get(part, 0), 2) for part in cpu3}
    out["burst_run"] = {
        **b,
        "committed_per_s": round(len(burst_sent) / (committed - start), 1),
        "delivered_per_s": round(b["delivered"] / span, 1),
        "events_per_s": round(len(burst_sent) / span, 1),
        "seconds": round(span, 2),
        "cpu_s": {**burst_cpu, "client": round(client3 - client2, 2)},
        "cores_busy": round((sum(burst_cpu.values()) + client3 - client2) / span, 2),
    }
    out["target"] = {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS}
    out["met"] = (
        out["db"]["p50_ms"] <= TARGET_P50_MS
        and out["db"]["p99_ms"] <= TARGET_P99_MS
        and out["db"]["missing"] == 0
    )
    return out


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))
