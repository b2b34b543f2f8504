"""The gateway's guard on ``/rest/v1/rpc/`` (``carbook_stack.nginx_rpc``), exactly: the
stack's own nginx config, run by the real nginx with Debian's Lua module, in front of a
stand-in for PostgREST.

The stand-in is a test double, and on purpose: the reply it plays — PostgREST 12's
``400 {"code":"","message":""}`` when a pooled connection broke under a call (its issue
#4681) — comes only at random moments of a real database restart
(tests/stack/test_stack_heals.py kills one under load for real). Terminating or killing
PostgREST's backends one by one, idle or mid-call, gets PostgREST's own 503 instead, so
this is the one way to play that reply every time and check every byte around it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack
from carbook_stack.nginx import command, find_nginx, write_config
from carbook_stack.nginx_rpc import EMPTY_ERROR, LOST_CONNECTION, lua_modules
from carbook_stack.processes import terminate

#: What the stand-in answers, by function: (status, body).
REPLIES = {
    "/rpc/broken": (400, EMPTY_ERROR),
    "/rpc/refused": (
        400,
        '{"code":"22P02","details":null,"hint":null,"message":"invalid input syntax for type uuid"}',
    ),
    "/rpc/empty_but_500": (500, EMPTY_ERROR),
}


class _PostgREST(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        self.seen.append(
            {
                "method": self.command,
                "path": path,
                "query": query,
                "body": body,
                "headers": dict(self.headers),
            }
        )
        status, reply = REPLIES.get(path, (200, json.dumps({"echo": body, "query": query})))
        data = reply.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Range", "0-0/*")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[LocalStack, type[_PostgREST]]]:
    nginx = find_nginx()
    assert lua_modules(nginx), "nginx's Lua module is needed: scripts/setup.sh installs libnginx-mod-http-lua"
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _PostgREST)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder:
        stack = LocalStack.ephemeral(Path(folder) / "state")
        s = stack.settings
        s.postgrest_port = upstream.server_address[1]
        s.app_port = free_port(avoid={s.api_port, s.db_port, s.postgrest_port})
        s.nginx_status_port = free_port(avoid={s.api_port, s.db_port, s.postgrest_port, s.app_port})
        config = write_config(s)
        proc = subprocess.Popen(
            command(s, config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{s.nginx_status_port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            yield stack, _PostgREST
        finally:
            terminate(proc.pid)
            proc.wait(timeout=10)
            upstream.shutdown()
            upstream.server_close()


def _call(stack: LocalStack, method: str, fn: str, **kw: Any) -> httpx.Response:
    s = stack.settings
    headers = {"apikey": s.publishable_key, **kw.pop("headers", {})}
    return httpx.request(method, f"{s.api_url}/rest/v1/rpc/{fn}", headers=headers, timeout=10, **kw)


def test_the_empty_400_of_a_broken_connection_is_answered_503_with_retry_after(
    gateway: tuple[LocalStack, type[_PostgREST]],
) -> None:
    stack, _ = gateway
    reply = _call(stack, "POST", "broken", json={"car_id": "x"})
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    assert reply.json() == LOST_CONNECTION
    assert reply.headers["access-control-allow-origin"] == "*"  # still readable by a page


@pytest.mark.parametrize(("fn", "status"), [("refused", 400), ("empty_but_500", 500)])
def test_every_other_error_passes_unchanged(
    gateway: tuple[LocalStack, type[_PostgREST]], fn: str, status: int
) -> None:
    stack, _ = gateway
    reply = _call(stack, "POST", fn, json={})
    assert (reply.status_code, reply.text) == (status, REPLIES[f"/rpc/{fn}"][1])
    assert "retry-after" not in reply.headers


def test_a_call_reaches_postgrest_as_sent_and_its_reply_comes_back_as_given(
    gateway: tuple[LocalStack, type[_PostgREST]],
) -> None:
    stack, upstream = gateway
    upstream.seen.clear()
    body = json.dumps({"car_id": "2c1e0b1e-0000-4000-8000-000000000000", "note": "ünïcode"})
    post = _call(
        stack,
        "POST",
        "book_car_atomic",
        content=body,
        params={"select": "code"},
        headers={
            "apikey": stack.settings.publishable_key,
            "Content-Type": "application/json",
            "Prefer": "params=single-object",
        },
    )
    get = _call(stack, "GET", "is_free", params={"car_id": "abc", "apikey": stack.settings.publishable_key})
    assert post.status_code == 200 and post.json() == {"echo": body, "query": "select=code"}
    assert post.headers["content-range"] == "0-0/*"  # PostgREST's headers pass
    assert get.status_code == 200 and get.json() == {"echo": "", "query": "car_id=abc"}  # the key stays out
    sent_post, sent_get = upstream.seen
    assert (sent_post["method"], sent_post["path"], sent_post["body"]) == (
        "POST",
        "/rpc/book_car_atomic",
        body,
    )
    assert sent_post["headers"]["Prefer"] == "params=single-object"
    # The new key is a JWT by the time PostgREST sees it, as for every /rest/v1 call.
    assert sent_post["headers"]["Authorization"] == f"Bearer {stack.settings.anon_key}"
    assert (sent_get["method"], sent_get["path"]) == ("GET", "/rpc/is_free")
