"""The database gone, the rest of the stack up: Auth and Storage answer at once, with a 503
in their own JSON shape, so supabase-py, the SDK and the CLI all say "unreachable".

Each reply is checked for its status, its exact body and its speed: a plain-text 500, a
traceback, another shape, or a request left waiting out the connection pool's 30 s
would each fail here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from storage3.exceptions import StorageApiError
from typer.testing import CliRunner

from carbook_cli.main import app
from carbook_sdk import Carbook, CarbookConnectionError, Settings
from carbook_stack.local_postgres import port_in_use
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client

from ..helpers import temporary_stack

BUCKET = "car-images"
OBJECT = "outage/kept.png"
#: Well under the pool's own 30 s wait: an outage must not look like a hang.
PROMPT = 10.0
UNAVAILABLE = "The database is unavailable"
STORAGE_503 = {
    "statusCode": "503",
    "error": "Service Unavailable",
    "code": "DatabaseError",
    "message": UNAVAILABLE,
}


@pytest.fixture(scope="module")
def down_stack() -> Iterator[LocalStack]:
    """A stack of this module's own, with an object stored, then its PostgreSQL stopped."""
    with temporary_stack("carbook-outage-") as st:
        s = st.settings
        stored = httpx.post(
            f"{s.api_url}/storage/v1/object/{BUCKET}/{OBJECT}",
            headers={"apikey": s.service_role_key, "content-type": "image/png"},
            content=PNG,
        )
        assert stored.status_code == 200, stored.text
        st.postgres.stop()
        assert not port_in_use(s.db_port, s.host)
        parts = {p.name: p for p in st.status().parts}
        # The database, and only it, is down: PostgREST and the app run, though neither
        # is healthy (ready) without it.
        assert not parts["database"].running
        assert parts["postgrest"].running and parts["app"].running
        assert not parts["app"].healthy
        yield st


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    reply = call()
    return reply, time.monotonic() - began


@pytest.mark.parametrize(
    ("api_version", "body"),
    [
        (None, {"code": 503, "error_code": "unexpected_failure", "msg": UNAVAILABLE}),
        ("2024-01-01", {"code": "unexpected_failure", "message": UNAVAILABLE}),
    ],
    ids=["legacy-shape", "2024-01-01-shape"],
)
def test_sign_in_is_a_503_in_gotrue_shape(
    down_stack: LocalStack, api_version: str | None, body: dict[str, object]
) -> None:
    s = down_stack.settings
    headers = {"apikey": s.anon_key, **({"X-Supabase-Api-Version": api_version} if api_version else {})}
    for _ in range(2):  # the first finds a dead pooled connection, the next an empty pool
        reply, elapsed = _timed(
            lambda: httpx.post(
                f"{s.api_url}/auth/v1/token",
                params={"grant_type": "password"},
                headers=headers,
                json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                timeout=60,
            )
        )
        assert reply.status_code == 503, reply.text
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["x-sb-error-code"] == "unexpected_failure"
        assert reply.json() == body
        assert elapsed < PROMPT


@pytest.mark.parametrize(
    ("method", "path", "key", "payload"),
    [
        ("POST", f"/storage/v1/object/list/{BUCKET}", "service_role_key", {"prefix": "outage"}),
        ("GET", f"/storage/v1/object/{BUCKET}/{OBJECT}", "service_role_key", None),
        ("GET", f"/storage/v1/object/public/{BUCKET}/{OBJECT}", None, None),
        ("POST", f"/storage/v1/object/{BUCKET}/outage/new.png", "service_role_key", None),
    ],
    ids=["list", "download", "public-url", "upload"],
)
def test_storage_is_a_503_in_storage_shape(
    down_stack: LocalStack, method: str, path: str, key: str | None, payload: dict[str, str] | None
) -> None:
    s = down_stack.settings
    headers = {"apikey": getattr(s, key)} if key else {}
    upload = path.endswith("new.png")
    if upload:
        headers["content-type"] = "image/png"
    reply, elapsed = _timed(
        lambda: httpx.request(
            method,
            f"{s.api_url}{path}",
            headers=headers,
            json=payload,
            content=PNG if upload else None,
            timeout=60,
        )
    )
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == STORAGE_503
    assert reply.headers.get_list("access-control-allow-origin") == ["*"]  # a page can read it
    assert elapsed < PROMPT


def test_storage3_reads_the_503_as_storage_api_error(down_stack: LocalStack) -> None:
    s = down_stack.settings
    storage = supabase_client(s.api_url, s.service_role_key).storage
    # storage3 takes its `code` from the body's "error" and its `status` from "statusCode".
    expected = ("503", STORAGE_503["error"], UNAVAILABLE)
    for call in (lambda: storage.from_(BUCKET).download(OBJECT), storage.list_buckets):
        with pytest.raises(StorageApiError) as caught:
            call()
        assert (caught.value.status, caught.value.code, caught.value.message) == expected


def test_sdk_sign_in_raises_a_connection_error(down_stack: LocalStack) -> None:
    s = down_stack.settings
    with Carbook(settings=Settings(url=s.api_url, key=s.anon_key)) as cb:
        began = time.monotonic()
        with pytest.raises(CarbookConnectionError) as caught:
            cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    # The stack's own answer, not the client giving up on a silent server.
    assert time.monotonic() - began < PROMPT
    assert caught.value.status == 503
    assert UNAVAILABLE in str(caught.value)


def test_cli_login_exits_4_with_one_line(down_stack: LocalStack, tmp_path: Path) -> None:
    s = down_stack.settings
    stack_options = ["--url", s.api_url, "--anon-key", s.anon_key]
    result = CliRunner().invoke(
        app,
        [*stack_options, "auth", "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
        env={"CARBOOK_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.exit_code == 4, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert lines[0].startswith("Error:") and UNAVAILABLE in lines[0]
