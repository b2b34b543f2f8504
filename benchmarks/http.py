"""HTTP throughput with wrk, a C load generator, so the client does not eat the cores:
the stack's API port (nginx) against PostgREST direct, for the listing GET and the
booking RPC, in the same run. Bookings are real: every request books another car, as
one of many distinct users (tokens signed like the stack's Auth signs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt

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
    if out.returncode != 0 or not rate:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out.stdout)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(rate.group(1)),
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


def bench_http(stack: LocalStack, seconds: int, cars_per_run: int) -> dict[str, Any]:
    started = _cpu_times()
    s = stack.settings
    direct = f"http://{s.host}:{s.postgrest_port}"
    api = f"{s.api_url}/rest/v1"
    levels = []
    users = make_users(stack, 200, f"wrk-{uuid.uuid4().hex[:6]}")
    tokens = [_token(s.jwt_secret, uid) for uid, _ in users]
    for connections in (8, 32):
        row: dict[str, Any] = {"concurrency": connections}
        for name, base in (("direct", direct), ("stack", api)):
            listing = _wrk(base + LISTING, _lua_listing(s.anon_key, s.anon_key), connections, seconds)
            cars = make_cars(stack, cars_per_run, f"wrk-{name}-{connections}-{uuid.uuid4().hex[:6]}")
            script = _lua_booking(s.anon_key, tokens, cars, 2)
            booking = _wrk(base + "/rpc/book_car_atomic", script, connections, seconds)
            row[f"{name}_listing"] = listing
            row[f"{name}_booking"] = booking
        row["listing_ratio"] = round(row["stack_listing"]["rps"] / row["direct_listing"]["rps"], 3)
        row["booking_ratio"] = round(row["stack_booking"]["rps"] / row["direct_booking"]["rps"], 3)
        levels.append(row)
    return {
        "seconds": seconds,
        "cars_per_run": cars_per_run,
        "levels": levels,
        "cpu_steal": steal_share(started, _cpu_times()),
    }
