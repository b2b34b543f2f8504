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

The watchers (``benchmarks.watchers``: a raw WebSocket client, so the client does not
eat the cores) are spread over two child processes: one process's event loop handles its
sockets one after another, and the stack's Realtime service is one process too, so two
clients can each take a core while the server is between writes; more would only queue
behind the stack on 2 cores. The clients' CPU is reported beside the stack's, so a run
shows whether the client was the limit.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.cpu import cpu_of, stack_cpu, stack_rss
from benchmarks.watchers import Fleet, Watchers, now
from carbook_stack.manager import LocalStack
from carbook_stack.testing import make_cars, make_users

__all__ = ["TARGET_P50_MS", "TARGET_P99_MS", "bench_fanout", "rows", "target"]

#: Supabase's published figures for Broadcast from the database (``realtime.broadcast_changes``
#: on every insert, 10,000 msgs/s): median 46 ms, p99 159 ms.
TARGET_P50_MS = 46.0
TARGET_P99_MS = 159.0
AVAILABILITY = "realtime:cars:availability"
#: A public topic: a client may broadcast to it (nobody may send to the availability topic).
SOCKET_TOPIC = "realtime:bench-fanout"
#: Database connections booking at once in the burst.
BURST_CONNECTIONS = 4


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
    fleet: Fleet, send: Callable[[str], Any], keys: list[tuple[str, str]]
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
    conns = [
        await psycopg.AsyncConnection.connect(s.db_url, autocommit=True) for _ in range(BURST_CONNECTIONS)
    ]
    booker = _Booker(conns[0], users)
    sender, send = await _socket_sender(stack)
    pings = [(f"{tag}-{i}", f"ping:{tag}-{i}") for i in range(2 * bookings)]
    fleet: Fleet | None = None
    out: dict[str, Any] = {"watchers": watchers, "procs": procs, "bookings": bookings, "burst": burst}
    try:
        # The floor: one watcher alone.
        fleet = await Fleet.start(stack, 1, 1)
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
        fleet = await Fleet.start(stack, watchers, procs)
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

        # The burst: bookings committed as fast as BURST_CONNECTIONS connections can, then every
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
    db = out["db"]
    out["met"] = db["p50_ms"] <= TARGET_P50_MS and db["p99_ms"] <= TARGET_P99_MS and db["missing"] == 0
    out["why"] = "" if out["met"] else _why(out)
    return out


def _why(r: dict[str, Any]) -> str:
    """What a missed target spent its time on, from this run's own figures."""
    db, floor, cpu = r["db"], r["floor"]["db"], r["cpu_us_per_delivery"]
    if db["missing"]:
        return f"{db['missing']} of {db['delivered'] + db['missing']} deliveries never arrived"
    per_event = sum(cpu.values()) * r["watchers"] / 1000
    return (
        f"1 watcher alone hears it in p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms; the other "
        f"{r['watchers'] - 1} take the rest: first to last watcher p50 {db['spread_p50_ms']} ms, "
        f"CPU per delivery " + ", ".join(f"{k} {v} µs" for k, v in cpu.items()) + f" = {per_event:.0f} ms of "
        "CPU per booking on the machine's shared cores"
    )


def rows(r: dict[str, Any]) -> list[str]:
    """The benchmark table's fan-out rows (markdown)."""
    db, sock, floor, burst = r["db"], r["socket"], r["floor"], r["burst_run"]
    cpu = ", ".join(f"{k} {v} µs" for k, v in r["cpu_us_per_delivery"].items())
    rss = ", ".join(f"{k} {v} KiB" for k, v in r["rss_kib_per_connection"].items())
    n = f"{r['watchers']:,}"
    return [
        f"| Realtime fan-out: a booking committed while {n} watchers hold `cars:availability` "
        f"(raw WebSocket clients in {r['procs']} processes, through nginx), {r['bookings']} bookings one at a time | "
        f"commit to receipt p50 **{db['p50_ms']} ms**, p99 **{db['p99_ms']} ms**, max {db['max_ms']} ms over "
        f"{db['delivered']:,} deliveries (missing {db['missing']}); first to last watcher p50 {db['spread_p50_ms']} ms | "
        f"1 watcher: p50 {floor['db']['p50_ms']} ms, p99 {floor['db']['p99_ms']} ms; Broadcast over the socket "
        f"to {n}: p50 {sock['p50_ms']} ms, p99 {sock['p99_ms']} ms (to 1: p50 {floor['socket']['p50_ms']} ms) |",
        f"| Realtime fan-out burst: {r['burst']} bookings committed as fast as {BURST_CONNECTIONS} connections can, {n} watchers | "
        f"**{burst['delivered_per_s']:,.0f} deliveries/s** ({burst['events_per_s']} bookings/s heard by every watcher; "
        f"committed {burst['committed_per_s']}/s), commit to receipt p50 {burst['p50_ms']} ms, p99 {burst['p99_ms']} ms, "
        f"missing {burst['missing']} | CPU per delivery (one at a time): {cpu}; cores busy in the burst "
        f"{burst['cores_busy']} |",
        f"| Realtime memory per connection ({n} joined) | RSS {rss} | Realtime's RSS with them "
        f"{r['realtime_rss_mib']} MiB; connect and join {r['connect_and_join_s']} s |",
    ]


def target(r: dict[str, Any]) -> tuple[str, str, bool]:
    """The fan-out target, its result in the run, and whether it is met."""
    db = r["db"]
    result = f"p50 {db['p50_ms']} ms, p99 {db['p99_ms']} ms, missing {db['missing']}"
    return (
        f"Realtime fan-out to {r['watchers']:,} watchers: commit to receipt p50 ≤ {TARGET_P50_MS:g} ms and "
        f"p99 ≤ {TARGET_P99_MS:g} ms (Supabase's Broadcast from the database)",
        result + (f": {r['why']}" if r["why"] else ""),
        bool(r["met"]),
    )
