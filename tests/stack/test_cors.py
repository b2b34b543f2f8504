"""The browser contract of the API port, header by header, as the Supabase CLI's gateway
(Kong's cors plugin) answers it; tests/browser holds a real Chromium to the same."""

from __future__ import annotations

import uuid

import httpx
import pytest

from carbook_stack.manager import LocalStack
from carbook_stack.nginx import CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE
from tests.helpers import stack_db

ORIGIN = "http://localhost:3000"
#: What supabase-js sends, across its clients.
REQUESTED = (
    "authorization, apikey, content-type, x-client-info, x-upsert, prefer, range, accept-profile, "
    "content-profile, x-supabase-api-version, cache-control, x-retry-count"
)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
)
CORS = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
]


@pytest.mark.parametrize(
    "path",
    [
        "/rest/v1/cars",
        "/rest/v1/rpc/book_car_atomic",
        "/auth/v1/token?grant_type=password",
        "/auth/v1/admin/users",
        "/storage/v1/object/car-images/cars/a.png",
        "/storage/v1/object/upload/sign/car-images/a.png",
        "/realtime/v1/websocket",
        "/functions/v1/anything",
        "/no/such/route",
    ],
)
def test_a_preflight_is_answered_before_the_apikey_check(stack: LocalStack, path: str) -> None:
    r = httpx.options(
        stack.settings.api_url + path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": REQUESTED,
        },
    )
    assert r.status_code == 200 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == CORS_ALLOW_METHODS
    assert r.headers["access-control-allow-headers"] == REQUESTED
    assert r.headers["access-control-max-age"] == str(CORS_MAX_AGE)
    for name in CORS:
        assert len(r.headers.get_list(name)) == (0 if name == "access-control-expose-headers" else 1), name


def test_an_options_request_that_is_no_preflight_still_needs_a_key(stack: LocalStack) -> None:
    # No Origin, or no Access-Control-Request-Method: not a browser's preflight (Kong's rule).
    url = stack.settings.api_url + "/rest/v1/cars"
    for headers in ({}, {"Origin": ORIGIN}, {"Access-Control-Request-Method": "GET"}):
        r = httpx.options(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["message"] == "No API key found in request"
        assert r.headers["access-control-allow-origin"] == "*"


def _replies(stack: LocalStack) -> list[tuple[str, httpx.Response]]:
    s = stack.settings
    key = {"apikey": s.publishable_key, "Origin": ORIGIN}
    with httpx.Client(base_url=s.api_url) as c:
        return [
            ("REST 200 (PostgREST sets CORS itself)", c.get("/rest/v1/cars?select=id&limit=1", headers=key)),
            ("REST 404", c.get("/rest/v1/no_such_table", headers=key)),
            ("REST 413 (nginx)", c.post("/rest/v1/rpc/x", headers=key, content=b"x" * 1_100_000)),
            ("Auth 200", c.get("/auth/v1/settings", headers=key)),
            ("Auth 400", c.post("/auth/v1/token?grant_type=password", headers=key, json={"email": "a@b.c"})),
            (
                "Storage 200",
                c.post("/storage/v1/object/list/car-images", headers=key, json={"prefix": "seed"}),
            ),
            ("Storage 404 route", c.patch("/storage/v1/object/car-images/x.png", headers=key)),
            (
                "public object",
                c.get("/storage/v1/object/public/car-images/seed/swift.png", headers={"Origin": ORIGIN}),
            ),
            ("no key 401 (nginx)", c.get("/auth/v1/settings", headers={"Origin": ORIGIN})),
            ("unknown route 404", c.get("/nowhere", headers=key)),
            ("JWKS", c.get("/auth/v1/.well-known/jwks.json", headers={"Origin": ORIGIN})),
            ("bad request 400 (nginx)", c.get("/rest/v1/%00", headers=key)),
        ]


def test_every_reply_carries_the_cors_headers_once(stack: LocalStack) -> None:
    statuses = {}
    for name, r in _replies(stack):
        statuses[name] = r.status_code
        assert r.headers.get_list("access-control-allow-origin") == ["*"], name
        exposed = r.headers.get_list("access-control-expose-headers")
        assert exposed == [", ".join(CORS_EXPOSE_HEADERS)], name
        for preflight_only in (
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
        ):
            assert preflight_only not in r.headers, (name, preflight_only)
    # The replies are the ones named: success and error, from nginx and from behind it.
    assert statuses == {
        "REST 200 (PostgREST sets CORS itself)": 200,
        "REST 404": 404,
        "REST 413 (nginx)": 413,
        "Auth 200": 200,
        "Auth 400": 400,
        "Storage 200": 200,
        "Storage 404 route": 404,
        "public object": 200,
        "no key 401 (nginx)": 401,
        "unknown route 404": 404,
        "JWKS": 200,
        "bad request 400 (nginx)": 400,
    }
    for needed in (
        "Content-Range",
        "X-Total-Count",
        "Content-Length",
        "Content-Disposition",
        "ETag",
        "Location",
    ):
        assert needed in CORS_EXPOSE_HEADERS


@pytest.mark.parametrize(
    "sign",
    [{"User-Agent": CHROME}, {"User-Agent": "Mozilla/5.0 (Macintosh) Firefox/140.0"}, {"Origin": ORIGIN}],
    ids=["chrome", "firefox", "origin"],
)
def test_the_secret_key_is_refused_from_a_browser_and_changes_nothing(
    stack: LocalStack, sign: dict[str, str]
) -> None:
    s = stack.settings
    email = f"leak-{uuid.uuid4().hex[:8]}@example.test"
    for base in (s.api_url, f"http://{s.host}:{s.app_port}"):  # nginx, and the app behind it
        r = httpx.post(
            f"{base}/auth/v1/admin/users",
            headers={"apikey": s.secret_key, **sign},
            json={"email": email, "password": "x-password-1"},
        )
        assert r.status_code == 401, base
        assert r.json() == {
            "message": "Forbidden use of secret API key in browser",
            "hint": "Secret API keys can only be used in a protected environment and should never be "
            "used in a browser. Use the publishable key instead.",
        }
    r = httpx.get(f"{s.api_url}/rest/v1/cars?select=id&limit=1", headers={"apikey": s.secret_key, **sign})
    assert r.status_code == 401
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from auth.users where email = %s", (email,)).fetchone() == (0,)


@pytest.mark.parametrize(
    "agent", ["python-httpx/0.28.1", "curl/8.5.0", "node", "supabase-py/2.34.0", None], ids=str
)
def test_servers_keep_the_secret_key(stack: LocalStack, agent: str | None) -> None:
    s = stack.settings
    headers = {"apikey": s.secret_key}
    if agent:
        headers["User-Agent"] = agent
    with httpx.Client() as c:
        if agent is None:
            c.headers.pop("User-Agent")
        assert c.get(f"{s.api_url}/auth/v1/admin/users", headers=headers).status_code == 200
        assert c.get(f"{s.api_url}/rest/v1/audit_logs?select=id&limit=1", headers=headers).status_code == 200


def test_the_legacy_keys_and_the_publishable_key_work_from_a_browser(stack: LocalStack) -> None:
    # Hosted Supabase refuses only the new secret keys in a browser.
    s = stack.settings
    for key in (s.publishable_key, s.anon_key, s.service_role_key):
        r = httpx.get(
            f"{s.api_url}/rest/v1/cars?select=id&limit=1", headers={"apikey": key, "User-Agent": CHROME}
        )
        assert r.status_code == 200, key
