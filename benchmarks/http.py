"""HTTP throughput with wrk, a C load generator, so the client does not eat the cores:
the stack's API port (nginx) against PostgREST direct, for the listing GET and the
booking RPC, in the same run. Bookings are real: every request books another car, as
one of many distinct users (tokens signed like the stack's Auth signs them).

On a shared 2-core machine one 5-second wrk run of the same URL varies by ±15 % from the
next, more than nginx's own cost (about a tenth of PostgREST's and PostgreSQL's CPU per
listing request, measured with ``perf stat``). So each row is several rounds of a direct
run and a stack run back to back, the order swapped every round (direct first, then
stack first, ...) so that a machine slowing down or speeding up favours neither side.
A row's ratio is the median of its rounds' ratios; every round's ratio is kept. Before
the rounds of a row, one short run on each side is thrown away: the first requests at a
new concurrency open PostgREST's database connections and warm its caches (a first run
measured a p99 several times the next one's), which would count against whichever side
went first.

Each stack run also records the CPU nginx's workers spent per request (from /proc): the
gateway's own cost, steadier than a throughput ratio that the whole machine moves.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from benchmarks.cpu import stack_cpu
from carbook_stack.manager import LocalStack
from carbook_stack.testing import make_cars, make_users

__all__ = ["bench_http", "find_wrk"]

LISTING = (
    "/cars?select=*&is_published=eq.true&booking_status=eq.available&order=created_at.desc,id.asc&limit=50"
)


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/bench.sh does it)")
    return found


def _token(secret: str, user_id: str) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def _lua_listing(apikey: str, bearer: str) -> str:
    return f"""
wrk.method = "GET"
wrk.headers["apikey"] = "{apikey}"
wrk.headers["Authorization"] = "Bearer {bearer}"
"""


def _lua_booking(apikey: str, tokens: list[str], cars: list[str], offset: int) -> str:
    """Each request books the next car as the next user; threads take turns, no pair twice."""
    return (
        "local tokens = {" + ",".join(f'"{t}"' for t in tokens) + "}\n"
        "local cars = {" + ",".join(f'"{c}"' for c in cars) + "}\n"
        f"""
local counter = 0
local threads = 0
function setup(thread)
  thread:set("start", threads)
  threads = threads + 1
end
function init(args)
  counter = start
end
function request()
  local i = (counter % #cars) + 1
  counter = counter + {offset}
  local body = '{{"car_id":"' .. cars[i] .. '"}}'
  local headers = {{}}
  headers["apikey"] = "{apikey}"
  headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, headers, body)
end
"""
    )


def _wrk(url: str, script: str, connections: int, seconds: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="carbook-wrk-"))
    try:
        path = folder / "script.lua"
        path.write_text(script)
        out = subprocess.run(
            [find_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(path), url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    done = re.search(r"(\d+) requests in", out.stdout)
    if out.returncode != 0 or not rate:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out.stdout)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(rate.group(1)),
        "requests": float(done.group(1)) if done else 0.0,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else 0.0,
    }


def _cpu_times() -> list[int]:
    """The machine's CPU time by kind (/proc/stat's first line), or nothing off Linux."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return []


def steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to others between two readings: a ratio
    measured while the host took much of the machine says little of nginx's own cost."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=False)]
    return round(spent[7] / sum(spent), 3) if sum(spent) else None


def _pair(
    run: Callable[[str, str], dict[str, float]], direct: str, api: str, first: str
) -> tuple[dict[str, float], dict[str, float]]:
    """One round: the same load direct and through the API port, ``first`` before the other."""
    order = [("direct", direct), ("stack", api)]
    if first == "stack":
        order.reverse()
    got = {name: run(name, base) for name, base in order}
    return got["direct"], got["stack"]


def _row(rounds: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, Any]:
    """A row of the report from its rounds: the median round's figures, and every ratio."""
    ratios = [round(stack["rps"] / direct["rps"], 3) for direct, stack in rounds]
    middle = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]
    direct, stack = rounds[middle]
    # nginx's CPU per request, the median over the rounds' stack runs.
    spent = sorted(run.get("nginx_us_per_request", 0.0) for _, run in rounds)
    return {
        "direct": direct,
        "stack": stack,
        "ratio": ratios[middle],
        "ratios": ratios,
        "nginx_us": spent[len(spent) // 2],
    }


def _nginx_seconds(stack: LocalStack) -> float:
    return stack_cpu(stack).get("nginx", 0.0)


def bench_http(
    stack: LocalStack, seconds: int, cars_per_run: int, rounds: int = 5, warmup: int = 2
) -> dict[str, Any]:
    started = _cpu_times()
    s = stack.settings
    direct = f"http://{s.host}:{s.postgrest_port}"
    api = f"{s.api_url}/rest/v1"
    levels = []
    users = make_users(stack, 200, f"wrk-{uuid.uuid4().hex[:6]}")
    tokens = [_token(s.jwt_secret, uid) for uid, _ in users]
    for connections in (8, 32):

        def listing(name: str, base: str, length: int, c: int = connections) -> dict[str, float]:
            return _wrk(base + LISTING, _lua_listing(s.anon_key, s.anon_key), c, length)

        def booking(name: str, base: str, length: int, c: int = connections) -> dict[str, float]:
            count = max(50, cars_per_run * length // seconds)
            cars = make_cars(stack, count, f"wrk-{name}-{c}-{uuid.uuid4().hex[:6]}")
            return _wrk(base + "/rpc/book_car_atomic", _lua_booking(s.anon_key, tokens, cars, 2), c, length)

        row: dict[str, Any] = {"concurrency": connections, "rounds": rounds}
        for what, load in (("listing", listing), ("booking", booking)):
            if warmup:
                for name, base in (("direct", direct), ("stack", api)):
                    load(name, base, warmup)

            def run(name: str, base: str, load: Callable[..., dict[str, float]] = load) -> dict[str, float]:
                before = _nginx_seconds(stack)
                got = load(name, base, seconds)
                if name == "stack" and got["requests"]:
                    spent = _nginx_seconds(stack) - before
                    got["nginx_us_per_request"] = round(spent * 1e6 / got["requests"], 1)
                return got

            firsts = ["direct" if i % 2 == 0 else "stack" for i in range(rounds)]
            summary = _row([_pair(run, direct, api, first) for first in firsts])
            row[f"direct_{what}"] = summary["direct"]
            row[f"stack_{what}"] = summary["stack"]
            row[f"{what}_ratio"] = summary["ratio"]
            row[f"{what}_ratios"] = summary["ratios"]
            row[f"{what}_nginx_us"] = summary["nginx_us"]
        levels.append(row)
    return {
        "seconds": seconds,
        "cars_per_run": cars_per_run,
        "rounds": rounds,
        "warmup_seconds": warmup,
        "levels": levels,
        "cpu_steal": steal_share(started, _cpu_times()),
    }
