"""nginx keeps its connections to PostgREST alive, and loses no request for it: every
location that proxies sends HTTP/1.1 with an empty Connection header (a location's own
proxy_set_header replaces the server's whole set), no failed write is sent twice, and a
mixed load of reads, bookings and refused writes meets no "prematurely closed"
connection."""

from __future__ import annotations

import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import jwt

from carbook_stack.manager import LocalStack
from carbook_stack.nginx import render_config

from ..helpers import make_cars, make_users

#: Seconds of load, and threads sending it: bounded, on loopback only.
LOAD_SECONDS = 6.0
THREADS = 8


def _blocks(config: str, opener: str) -> list[str]:
    """The bodies of every block that starts with ``opener`` (braces balanced)."""
    found = []
    for match in re.finditer(opener, config):
        depth, start = 0, config.index("{", match.start())
        for i in range(start, len(config)):
            depth += {"{": 1, "}": -1}.get(config[i], 0)
            if depth == 0:
                found.append(config[start + 1 : i])
                break
    return found


def test_every_location_that_proxies_keeps_upstream_connections_alive() -> None:
    with tempfile.TemporaryDirectory() as folder:
        stack = LocalStack.ephemeral(Path(folder) / "state")
        stack.settings.postgrest_port, stack.settings.app_port = 40001, 40002
        config = render_config(stack.settings, Path(folder))
    locations = _blocks(config, r"\blocation\b[^{]*")
    proxying = [body for body in locations if "proxy_pass" in body]
    assert len(proxying) >= 3  # /rest/v1/, /rest/v1/rpc/, the app
    for body in proxying:
        assert "proxy_http_version 1.1;" in body, body
        assert 'proxy_set_header Connection "";' in body, body
        # A location's own set replaces the server's: the host and request id are there too.
        assert "proxy_set_header Host $http_host;" in body, body
        assert "proxy_set_header X-Request-Id $request_id;" in body, body
    (rest,) = _blocks(config, r"upstream carbook_rest ")
    assert "keepalive 64;" in rest and "keepalive_timeout 20s;" in rest
    retries = [line.strip() for line in config.splitlines() if line.strip().startswith("proxy_next_upstream")]
    assert retries and all("non_idempotent" not in line for line in retries), retries
    # Large and chunked bodies take a connection of their own (PostgREST closes one
    # whose unread body passed 8 KiB).
    assert "carbook_rest_fresh" in config
    # The per-request regular expressions are compiled once (nginx -V: --with-pcre-jit).
    assert "\npcre_jit on;\n" in config


def _log_count(path: Path, needle: str) -> int:
    return path.read_text(errors="replace").count(needle) if path.exists() else 0


def test_a_mixed_load_meets_no_prematurely_closed_connection(own_stack: LocalStack) -> None:
    # A stack of its own: the load books hundreds of cars, which others' listings would see.
    stack = own_stack
    stack.start()
    s = stack.settings
    error_log = s.logs_dir / "nginx-error.log"
    closed_before = _log_count(error_log, "prematurely closed")
    users = make_users(stack, 20, f"ka-{uuid.uuid4().hex[:6]}")
    cars = make_cars(stack, 400, f"ka-{uuid.uuid4().hex[:6]}")
    now = int(time.time())
    tokens = [
        jwt.encode(
            {"sub": uid, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600},
            s.jwt_secret,
            algorithm="HS256",
        )
        for uid, _ in users
    ]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_SECONDS

    def load(n: int) -> None:
        rest = f"{s.api_url}/rest/v1"
        with httpx.Client(timeout=30) as client:
            i = n
            while time.monotonic() < deadline:
                kind = i % 4
                try:
                    if kind == 0:
                        reply = client.get(f"{rest}/cars?select=id&limit=20", headers={"apikey": s.anon_key})
                    elif kind == 1:
                        reply = client.post(
                            f"{rest}/rpc/book_car_atomic",
                            headers={
                                "apikey": s.anon_key,
                                "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                            },
                            json={"car_id": cars[i % len(cars)]},
                        )
                    elif kind == 2:
                        # Refused before PostgREST reads the body (a forged JWT), 9 KB of it:
                        # the connection it arrived on must not be the next request's.
                        reply = client.post(
                            f"{rest}/cars",
                            headers={"apikey": s.anon_key, "Authorization": "Bearer not.a.jwt"},
                            content=b'{"make":"' + b"x" * 9000 + b'"}',
                        )
                    else:
                        reply = client.post(
                            f"{rest}/rpc/book_car_atomic",
                            headers={"apikey": s.anon_key},
                            json={"car_id": cars[0]},
                        )
                    with lock:
                        statuses[reply.status_code] += 1
                        if reply.status_code >= 500:
                            failures.append(f"{kind}: {reply.status_code} {reply.text[:120]}")
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{kind}: {type(exc).__name__}")
                i += THREADS

    threads = [threading.Thread(target=load, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1.2)  # nginx flushes its error log at once; give the workers a moment
    assert sum(statuses.values()) > 100, statuses
    assert failures == [], failures[:10]
    assert _log_count(error_log, "prematurely closed") == closed_before
