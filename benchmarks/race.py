"""The race over HTTP: N distinct signed-in users call ``book_car_atomic`` on one car at
once, with the same client pointed once at PostgREST direct and once at the stack's API
port (nginx), so the gateway's share of the race is what differs.

The client is raw asyncio, not httpx and not the SDK: on 2 shared cores a Python HTTP
client's own per-request work (httpx builds URL, header and request models, runs its
hooks: a few hundred microseconds each, 200 at once) would queue on the one event loop
and be timed as server latency. Here every request is prebuilt bytes, every connection
is opened before the start (so no SYN waits in a listen backlog inside the timing, and
a connection serves exactly one request: PostgREST 12.0.2 may close kept-alive ones,
see nginx.py), all requests are written in one tight loop, and a reply is read with a
minimal HTTP/1.1 parser. What remains timed is the server path.

Tokens are minted exactly as the stack's Auth mints them (``issue_access_token``: ES256
with the stack's signing key and its ``kid``), for users made straight in the database.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from carbook_stack.manager import LocalStack
from carbook_stack.testing import make_cars, make_users, stack_db
from carbook_stack.tokens import issue_access_token

__all__ = ["P99_TARGET", "bench_http_race"]

#: Target: p99 through the API port at most this times p99 through PostgREST direct.
P99_TARGET = 1.3


@dataclass(frozen=True)
class _Target:
    name: str
    host: str
    port: int
    path: str
    apikey: str | None

    @classmethod
    def of(cls, name: str, base_url: str, path: str, apikey: str | None) -> _Target:
        url = urlsplit(base_url)
        assert url.hostname and url.port, base_url
        return cls(name, url.hostname, url.port, url.path.rstrip("/") + path, apikey)

    def request(self, token: str, car: str) -> bytes:
        body = json.dumps({"car_id": car}).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            + (f"apikey: {self.apikey}\r\n" if self.apikey else "")
            + "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 reply: status and body (Content-Length, chunked, or until close)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return status, b"".join(parts)
    return status, await reader.read()


async def _connect(target: _Target, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    gate = asyncio.Semaphore(32)  # a burst of connects would overflow the listen backlog

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with gate:
            return await asyncio.open_connection(target.host, target.port)

    return await asyncio.gather(*(one() for _ in range(n)))


async def _race(target: _Target, tokens: list[str], car: str) -> dict[str, Any]:
    """One race on one car: every token once, all at once. Latencies in ms."""
    conns = await _connect(target, len(tokens))
    requests = [target.request(t, car) for t in tokens]

    async def reply(reader: asyncio.StreamReader, sent: float) -> tuple[str, float, float, str | None]:
        try:
            status, body = await _read_reply(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return f"error: {type(exc).__name__}", 0.0, time.perf_counter(), None
        done = time.perf_counter()
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        code = data.get("code") if isinstance(data, dict) else None
        if status == 200 and code == "booked":
            outcome = "win"
        elif status == 200 and code == "already_booked":
            outcome = "lose"
        else:
            outcome = f"error: {status} {code}"
        return outcome, (done - sent) * 1000, done, data.get("booked_by") if outcome == "win" else None

    try:
        sent = []
        first = time.perf_counter()
        for (_, writer), request in zip(conns, requests, strict=True):
            writer.write(request)  # the transport sends at once: no loop turn between requests
            sent.append(time.perf_counter())
        results = await asyncio.wait_for(
            asyncio.gather(*(reply(r, t) for (r, _), t in zip(conns, sent, strict=True))), timeout=120
        )
    finally:
        for _, writer in conns:
            writer.close()
    winners = [w for o, _, _, w in results if o == "win"]
    return {
        "car": car,
        "winners": len(winners),
        "winner": winners[0] if winners else None,
        "losers": sum(1 for o, *_ in results if o == "lose"),
        "errors": [o for o, *_ in results if o.startswith("error")],
        "latencies": [ms for o, ms, _, _ in results if not o.startswith("error")],
        "span_ms": (max(done for _, _, done, _ in results) - first) * 1000,
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 2)


def _summary(races: list[dict[str, Any]], double_bookings: int) -> dict[str, Any]:
    latencies = [ms for r in races for ms in r["latencies"]]
    return {
        "runs": [
            {
                "winners": r["winners"],
                "losers": r["losers"],
                "errors": len(r["errors"]),
                "p50_ms": _pct(r["latencies"], 50),
                "p99_ms": _pct(r["latencies"], 99),
                "span_ms": round(r["span_ms"], 2),
            }
            for r in races
        ],
        "error_kinds": sorted({e for r in races for e in r["errors"]}),
        "double_bookings": double_bookings,
        "errors": sum(len(r["errors"]) for r in races),
        # Over every reply of every run: steadier than the worst run's own p99.
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "span_ms": round(statistics.median(r["span_ms"] for r in races), 1),
    }


def _double_bookings(stack: LocalStack, races: list[dict[str, Any]]) -> int:
    """Bookings beyond one per car, by the replies and by the database (audit rows, and
    the row's owner against the one winner's reply)."""
    cars = [r["car"] for r in races]
    with stack_db(stack) as conn:
        audit = dict(
            conn.execute(
                """select record_id::text, count(*) from public.audit_logs
                    where action = 'car.booked' and record_id = any(%s::uuid[]) group by record_id""",
                (cars,),
            ).fetchall()
        )
        owners = dict(
            conn.execute(
                "select id::text, booked_by::text from public.cars where id = any(%s::uuid[])", (cars,)
            ).fetchall()
        )
    extra = 0
    for r in races:
        extra += max(0, r["winners"] - 1) + max(0, audit.get(r["car"], 0) - 1)
        if r["winner"] is not None and owners.get(r["car"]) != r["winner"]:
            extra += 1
    return extra


async def bench_http_race(stack: LocalStack, clients: int, runs: int) -> dict[str, Any]:
    s = stack.settings
    keys = s.keys()
    users = make_users(stack, clients, f"hrace-{uuid.uuid4().hex[:6]}")
    tokens = [
        issue_access_token(
            keys=keys,
            user={"id": uid, "email": email},
            session_id=str(uuid.uuid4()),
            expires_in=s.jwt_expiry,
            issuer=f"{s.api_url}/auth/v1",
        )[0]
        for uid, email in users
    ]
    targets = (
        _Target.of("direct", s.postgrest_url, "/rpc/book_car_atomic", None),
        _Target.of("stack", s.api_url, "/rest/v1/rpc/book_car_atomic", s.publishable_key),
    )
    cars = iter(make_cars(stack, 2 * (runs + 1), f"hrace-{uuid.uuid4().hex[:6]}"))
    for target in targets:  # warm-up, untimed: PostgREST's pool and schema cache, nginx
        await _race(target, tokens[: min(len(tokens), 20)], next(cars))
    races: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for run in range(runs):
        # Paired runs, in alternating order, so drift on a shared machine hits both alike.
        for target in targets if run % 2 == 0 else targets[::-1]:
            races[target.name].append(await _race(target, tokens, next(cars)))
    out: dict[str, Any] = {"clients": clients}
    for name, done in races.items():
        out[name] = _summary(done, _double_bookings(stack, done))
    direct_p99 = out["direct"]["p99_ms"]
    out["p99_ratio"] = round(out["stack"]["p99_ms"] / direct_p99, 3) if direct_p99 else 0.0
    out["p50_ratio"] = (
        round(out["stack"]["p50_ms"] / out["direct"]["p50_ms"], 3) if out["direct"]["p50_ms"] else 0.0
    )
    out["p99_target"] = P99_TARGET
    return out
