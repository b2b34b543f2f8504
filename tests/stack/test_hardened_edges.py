"""Bad input against the real stack: every case is refused with a 4xx in the service's own
error shape (GoTrue's, Storage's, PostgREST's), at once, and leaves the database and the
object store as they were. None reaches the app's last-resort handler, and none ties up
the gateway for other callers."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from carbook_stack.manager import LocalStack
from carbook_stack.service import UNEXPECTED
from tests.helpers import PNG, unique_email

from ..helpers import make_cars, make_users, stack_db

BUCKET = "car-images"
DEEP = 100_000
#: Longer than any answer to bad input may take: each must be refused at once.
PROMPT = 5.0


@dataclass
class Case:
    """One bad request: how to send it, the status and the error shape it must get."""

    name: str
    method: str
    path: str
    status: int
    shape: str  # "auth" | "storage" | "rest"
    code: str | None = None  # GoTrue's error_code, Storage's statusCode, PostgREST's code
    json_body: Any = None
    raw: bytes | None = None
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    key: str = "anon"  # "anon" | "service" | "user" | a forged token's name (``keys``)
    headers: dict[str, str] = field(default_factory=dict)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_data(depth: int) -> bytes:
    return b'{"email":"deep@example.test","password":"long-enough-1","data":' + _deep(depth) + b"}"


LONG_ASCII = "a" * 73
EMOJI = "\U0001f600" * 30  # 30 characters, 120 bytes
NUL = "bad\u0000value"
SURROGATE = b'"bad\\ud800value"'


def _signup(email: Any, password: str = "long-enough-1", data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "password": password}
    if data is not None:
        body["data"] = data
    return body


CASES = [
    # Passwords bcrypt cannot hash: GoTrue's 400 validation_failed, before any hashing.
    Case(
        "signup 73 bytes",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        json_body=_signup(unique_email("long"), LONG_ASCII),
    ),
    Case(
        "signup 30 emoji",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        json_body=_signup(unique_email("emoji"), EMOJI),
    ),
    Case(
        "admin create 73 bytes",
        "POST",
        "/auth/v1/admin/users",
        400,
        "auth",
        "validation_failed",
        json_body={"email": unique_email("adm"), "password": LONG_ASCII},
        key="service",
    ),
    Case(
        "put user 73 bytes",
        "PUT",
        "/auth/v1/user",
        400,
        "auth",
        "validation_failed",
        json_body={"password": LONG_ASCII},
        key="user",
    ),
    # Sign-in compares what bcrypt reads (72 bytes), as GoTrue: wrong is just wrong.
    Case(
        "sign in 100 bytes",
        "POST",
        "/auth/v1/token?grant_type=password",
        400,
        "auth",
        "invalid_credentials",
        json_body={"email": "driver@carbook.local", "password": "x" * 100},
    ),
    # Nesting deeper than any body has.
    Case("signup 100k-deep array", "POST", "/auth/v1/signup", 400, "auth", "bad_json", raw=_deep(DEEP)),
    Case("signup 50k-deep data", "POST", "/auth/v1/signup", 400, "auth", "bad_json", raw=_deep_data(50_000)),
    Case(
        "list 100k-deep", "POST", f"/storage/v1/object/list/{BUCKET}", 400, "storage", "400", raw=_deep(DEEP)
    ),
    # Digits that are not ASCII.
    Case(
        "admin users page=²",
        "GET",
        "/auth/v1/admin/users?page=²",
        400,
        "auth",
        "validation_failed",
        key="service",
    ),
    Case(
        "admin users per_page=٣",
        "GET",
        "/auth/v1/admin/users?per_page=٣",
        400,
        "auth",
        "validation_failed",
        key="service",
    ),
    Case(
        "list limit ²",
        "POST",
        f"/storage/v1/object/list/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"prefix": "", "limit": "²"},
    ),
    Case(
        "list offset 10**30",
        "POST",
        f"/storage/v1/object/list/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"prefix": "", "offset": 10**30},
    ),
    # Numbers out of range.
    Case(
        "sign expiresIn 1e400",
        "POST",
        f"/storage/v1/object/sign/{BUCKET}/cars/x.png",
        400,
        "storage",
        "400",
        raw=b'{"expiresIn": 1e400}',
        key="service",
    ),
    Case(
        "sign expiresIn NaN",
        "POST",
        f"/storage/v1/object/sign/{BUCKET}/cars/x.png",
        400,
        "storage",
        "400",
        raw=b'{"expiresIn": NaN}',
        key="service",
    ),
    Case(
        "sign expiresIn 10**30",
        "POST",
        f"/storage/v1/object/sign/{BUCKET}/cars/x.png",
        400,
        "storage",
        "400",
        json_body={"expiresIn": 10**30},
        key="service",
    ),
    Case(
        "bucket file_size_limit 10**30",
        "POST",
        "/storage/v1/bucket",
        400,
        "storage",
        "400",
        json_body={"id": f"big-{uuid.uuid4().hex[:8]}", "file_size_limit": 10**30},
        key="service",
    ),
    Case(
        "bucket file_size_limit ²MB",
        "POST",
        "/storage/v1/bucket",
        400,
        "storage",
        "400",
        json_body={"id": f"sup-{uuid.uuid4().hex[:8]}", "file_size_limit": "٣MB"},
        key="service",
    ),
    # NUL: no text column or jsonb value can hold it.
    Case(
        "signup email NUL",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        json_body=_signup(f"a{NUL}@example.test"),
    ),
    Case(
        "signup data NUL",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        json_body=_signup(unique_email("nul"), data={"name": NUL}),
    ),
    Case(
        "signup data key NUL",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        json_body=_signup(unique_email("nulkey"), data={NUL: 1}),
    ),
    Case(
        "refresh_token NUL",
        "POST",
        "/auth/v1/token?grant_type=refresh_token",
        400,
        "auth",
        "validation_failed",
        json_body={"refresh_token": NUL},
    ),
    Case(
        "admin create NUL",
        "POST",
        "/auth/v1/admin/users",
        400,
        "auth",
        "validation_failed",
        json_body={"email": unique_email("nuladm"), "user_metadata": {"x": NUL}},
        key="service",
    ),
    Case(
        "list prefix NUL",
        "POST",
        f"/storage/v1/object/list/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"prefix": NUL},
    ),
    Case(
        "list-v2 prefix NUL",
        "POST",
        f"/storage/v1/object/list-v2/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"prefix": NUL},
    ),
    Case(
        "sign paths NUL",
        "POST",
        f"/storage/v1/object/sign/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"expiresIn": 60, "paths": [NUL]},
        key="service",
    ),
    Case(
        "remove prefixes NUL",
        "DELETE",
        f"/storage/v1/object/{BUCKET}",
        400,
        "storage",
        "400",
        json_body={"prefixes": [NUL]},
        key="service",
    ),
    Case(
        "move destinationBucket NUL",
        "POST",
        "/storage/v1/object/move",
        400,
        "storage",
        "400",
        json_body={
            "bucketId": BUCKET,
            "sourceKey": "a.png",
            "destinationKey": "b.png",
            "destinationBucket": NUL,
        },
        key="service",
    ),
    Case(
        "upload metadata NUL",
        "POST",
        f"/storage/v1/object/{BUCKET}/edges/nul.png",
        400,
        "storage",
        "400",
        files={"file": ("nul.png", PNG, "image/png")},
        data={"metadata": json.dumps({"x": NUL})},
        key="service",
    ),
    # Lone surrogates: not Unicode, so not storable as UTF-8.
    Case(
        "signup data surrogate",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        raw=b'{"email":"s@example.test","password":"long-enough-1","data":{"n":' + SURROGATE + b"}}",
    ),
    Case(
        "signup email surrogate",
        "POST",
        "/auth/v1/signup",
        400,
        "auth",
        "validation_failed",
        raw=b'{"password":"long-enough-1","email":' + SURROGATE + b"}",
    ),
    Case(
        "list prefix surrogate",
        "POST",
        f"/storage/v1/object/list/{BUCKET}",
        400,
        "storage",
        "400",
        raw=b'{"prefix":' + SURROGATE + b"}",
    ),
    Case(
        "upload metadata surrogate",
        "POST",
        f"/storage/v1/object/{BUCKET}/edges/sur.png",
        400,
        "storage",
        "400",
        files={"file": ("sur.png", PNG, "image/png")},
        data={"metadata": '{"x":"\\udc00"}'},
        key="service",
    ),
    # Answers that tell the truth: a bucket the caller may not see is not found (Storage
    # under RLS: HTTP 400 with "404" inside, as for every Storage error), never
    # "Successfully emptied".
    Case(
        "empty bucket as anon",
        "POST",
        f"/storage/v1/bucket/{BUCKET}/empty",
        400,
        "storage",
        "404",
        json_body={},
    ),
    Case(
        "empty bucket as a user",
        "POST",
        f"/storage/v1/bucket/{BUCKET}/empty",
        400,
        "storage",
        "404",
        json_body={},
        key="user",
    ),
    # The gateway's own limits, in PostgREST's shape.
    Case(
        "REST URL of 9,000 bytes",
        "GET",
        "/rest/v1/cars?select=*&id=in.(" + "a" * 9000 + ")",
        414,
        "rest",
        "414",
    ),
    Case(
        "RPC with 3,000 keys",
        "POST",
        "/rest/v1/rpc/book_car_atomic",
        413,
        "rest",
        "413",
        json_body={"car_id": str(uuid.uuid4()), **{f"k{i}": i for i in range(3000)}},
    ),
    Case(
        "RPC with 10,000 keys",
        "POST",
        "/rest/v1/rpc/book_car_atomic",
        413,
        "rest",
        "413",
        json_body={f"k{i}": i for i in range(10_000)},
    ),
    Case(
        "RPC GET with 600 keys",
        "GET",
        "/rest/v1/rpc/book_car_atomic?" + "&".join(f"k{i}=1" for i in range(600)),
        414,
        "rest",
        "414",
    ),
    # Tokens signed with the project's secret whose claims no service can use: a role that
    # is not text, a user id that is not a UUID or holds what the database cannot store.
    # Refused as bad tokens, never a 500 (each used to be one).
    *(
        Case(f"{what} with {forged}", method, path, status, shape, code, key=forged)
        for forged in ("role_list", "role_object", "sub_nul", "sub_surrogate", "payload_ff", "alg_list")
        for what, method, path, status, shape, code in (
            ("GET user", "GET", "/auth/v1/user", 403, "auth", "bad_jwt"),
            ("list buckets", "GET", "/storage/v1/bucket", 401, "storage", "401"),
        )
    ),
    Case("GET user with sub_not_uuid", "GET", "/auth/v1/user", 400, "auth", "bad_jwt", key="sub_not_uuid"),
    Case("logout with sub_not_uuid", "POST", "/auth/v1/logout", 400, "auth", "bad_jwt", key="sub_not_uuid"),
    Case("GET user with session_nul", "GET", "/auth/v1/user", 403, "auth", "bad_jwt", key="session_nul"),
    Case(
        "PUT user with session_junk",
        "PUT",
        "/auth/v1/user",
        403,
        "auth",
        "bad_jwt",
        key="session_junk",
        json_body={"data": {"a": 1}},
    ),
    Case(
        "upload with sub_not_uuid",
        "POST",
        f"/storage/v1/object/{BUCKET}/edges/not-a-uuid.png",
        400,
        "storage",
        "400",
        files={"file": ("x.png", PNG, "image/png")},
        key="sub_not_uuid",
    ),
    # Routes and methods nobody serves: JSON in the shape of the service they are under.
    Case(
        "an Auth route not served (invite)",
        "POST",
        "/auth/v1/invite",
        404,
        "auth",
        "not_found",
        json_body={"email": "a@b.c"},
    ),
    Case("an unknown Auth route", "GET", "/auth/v1/factors", 404, "auth", "not_found"),
    Case(
        "a method Auth does not take",
        "DELETE",
        "/auth/v1/user",
        405,
        "auth",
        "method_not_allowed",
        key="user",
    ),
    Case("a method Storage does not take", "PROPFIND", "/storage/v1/bucket", 404, "storage", "404"),
    Case("TRACE at the gateway", "TRACE", "/rest/v1/cars", 405, "gateway"),
    # Percent-escapes that are not UTF-8: the server would read each as U+FFFD, so two
    # names would be one object. Refused as hosted Storage refuses what it cannot decode.
    *(
        Case(
            f"upload to {name}",
            "POST",
            f"/storage/v1/object/{BUCKET}/edges/{name}",
            400,
            "storage",
            "400",
            files={"file": ("x.png", PNG, "image/png")},
            key="service",
        )
        for name in ("%ED%A0%80.png", "%FF.png", "ok-%C3.png")
    ),
    Case(
        "public download of %FF", "GET", f"/storage/v1/object/public/{BUCKET}/%FF.png", 400, "storage", "400"
    ),
    Case(
        "admin user %FF", "GET", "/auth/v1/admin/users/%FF", 400, "auth", "validation_failed", key="service"
    ),
]


def _segments(*parts: dict[str, Any]) -> str:
    return ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts)


def _forged(secret: str, claims: dict[str, Any]) -> str:
    return jwt.encode({"exp": int(time.time()) + 3600, **claims}, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def keys(stack: LocalStack) -> dict[str, str]:
    """The bearer for each kind of caller: the publishable key, the secret key, a user."""
    s = stack.settings
    email = unique_email("edges")
    signed = httpx.post(
        f"{s.api_url}/auth/v1/signup",
        headers={"apikey": s.anon_key},
        json={"email": email, "password": "long-enough-1"},
    )
    assert signed.status_code == 200, signed.text
    user = signed.json()["user"]["id"]
    secret = s.jwt_secret
    authed = {"role": "authenticated", "aud": "authenticated"}
    return {
        "anon": s.anon_key,
        "service": s.service_role_key,
        "user": signed.json()["access_token"],
        "role_list": _forged(secret, {"role": ["service_role"]}),
        "role_object": _forged(secret, {"role": {"name": "service_role"}}),
        "sub_nul": _forged(secret, {**authed, "sub": "\u0000"}),
        "sub_surrogate": _forged(secret, {**authed, "sub": "\ud800"}),
        "sub_not_uuid": _forged(secret, {**authed, "sub": "not-a-uuid"}),
        "session_nul": _forged(secret, {**authed, "sub": user, "session_id": "\u0000"}),
        "session_junk": _forged(secret, {**authed, "sub": user, "session_id": "not-a-session"}),
        # A payload that is not UTF-8 at all, signed all the same.
        "payload_ff": jwt.api_jws.encode(b'{"role":"anon","x":"\xff"}', secret, algorithm="HS256"),
        # The header is never signed: anyone may send an alg that is a list.
        "alg_list": _segments({"alg": ["HS256"], "typ": "JWT"}, {"role": "anon"}) + ".c2ln",
    }


def _fingerprint(stack: LocalStack) -> tuple[Any, ...]:
    """What any of the cases could have changed: users, sessions, identities, buckets,
    objects, cars, and the files of the object store."""
    with stack_db(stack) as conn:
        row = conn.execute(
            """select (select count(*) from auth.users), (select max(updated_at) from auth.users),
                      (select count(*) from auth.sessions), (select count(*) from auth.identities),
                      (select count(*) from storage.buckets), (select count(*) from storage.objects),
                      (select max(updated_at) from storage.objects),
                      (select count(*) from public.cars), (select max(updated_at) from public.cars)"""
        ).fetchone()
    files = sorted(p.name for p in stack.settings.state_dir.joinpath("storage").rglob("*") if p.is_file())
    return (row, files)


def _send(client: httpx.Client, stack: LocalStack, keys: dict[str, str], case: Case) -> httpx.Response:
    s = stack.settings
    signed_in = case.key not in ("anon", "service")  # a user's token (or a forged one)
    headers = {"apikey": s.anon_key if signed_in else keys[case.key], **case.headers}
    if signed_in:
        headers["Authorization"] = f"Bearer {keys[case.key]}"
    if case.raw is not None:
        headers.setdefault("content-type", "application/json")
        return client.request(case.method, case.path, headers=headers, content=case.raw)
    if case.files is not None:
        return client.request(case.method, case.path, headers=headers, files=case.files, data=case.data)
    if case.json_body is not None:
        return client.request(case.method, case.path, headers=headers, json=case.json_body)
    return client.request(case.method, case.path, headers=headers)


def _check_shape(case: Case, reply: httpx.Response) -> None:
    body = reply.json()
    if case.shape == "auth":
        assert set(body) >= {"code", "error_code", "msg"}, body
        assert body["error_code"] == case.code and body["code"] == case.status, body
    elif case.shape == "gateway":
        assert set(body) == {"message"}, body
    elif case.shape == "storage":
        assert set(body) == {"statusCode", "error", "code", "message"}, body
        assert body["statusCode"] == case.code, body
    else:
        assert set(body) == {"code", "message", "details", "hint"}, body
        assert body["code"] == case.code, body


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_in_the_services_shape_and_changes_nothing(
    stack: LocalStack, keys: dict[str, str], case: Case
) -> None:
    before = _fingerprint(stack)
    with httpx.Client(base_url=stack.settings.api_url, timeout=30) as client:
        began = time.monotonic()
        reply = _send(client, stack, keys, case)
        took = time.monotonic() - began
    assert reply.status_code == case.status, reply.text[:300]
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    _check_shape(case, reply)
    for leak in ("codec", "Traceback", "psycopg", "TypeError"):  # Python's words, never a client's
        assert leak not in reply.text, reply.text
    assert took < PROMPT, f"{case.name} took {took:.2f} s"
    assert _fingerprint(stack) == before


def test_no_case_reached_the_last_resort_handler(stack: LocalStack, keys: dict[str, str]) -> None:
    """The last-resort handler logs every answer it makes: the table above never got one."""
    with httpx.Client(base_url=stack.settings.api_url, timeout=30) as client:
        for case in CASES:
            assert _send(client, stack, keys, case).status_code < 500, case.name
    log = stack.app.log
    assert UNEXPECTED not in log.read_text(errors="replace")


def test_a_rest_query_of_100_ids_is_answered(stack: LocalStack) -> None:
    """PostgREST echoes the query in its reply headers: nginx's buffers hold them."""
    s = stack.settings
    ids = make_cars(stack, 3, f"edges-{uuid.uuid4().hex[:6]}") + [str(uuid.uuid4()) for _ in range(97)]
    reply = httpx.get(
        f"{s.api_url}/rest/v1/cars",
        params={"select": "id", "id": f"in.({','.join(ids)})"},
        headers={"apikey": s.anon_key},
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()) == 3


def test_legitimate_function_calls_pass_the_rpc_limit(stack: LocalStack) -> None:
    """Every function of the schema, called as its clients call it, is untouched by the
    limit: ``book_car_atomic`` by POST and by GET."""
    s = stack.settings
    car = make_cars(stack, 1, f"edges-rpc-{uuid.uuid4().hex[:6]}")[0]
    # A user of the test's own: booking as a seeded one would change what others read.
    user = make_users(stack, 1, f"edges-rpc-{uuid.uuid4().hex[:6]}")[0]
    now = int(time.time())
    token = jwt.encode(
        {"sub": user[0], "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600},
        s.jwt_secret,
        algorithm="HS256",
    )
    headers = {"apikey": s.anon_key, "Authorization": f"Bearer {token}"}
    booked = httpx.post(f"{s.api_url}/rest/v1/rpc/book_car_atomic", headers=headers, json={"car_id": car})
    assert booked.status_code == 200 and booked.json()["code"] in {"booked", "not_authenticated"}, booked.text
    again = httpx.get(f"{s.api_url}/rest/v1/rpc/book_car_atomic", headers=headers, params={"car_id": car})
    # GET runs read-only in PostgREST: the call reaches the function (and is refused there).
    assert again.status_code != 413 and again.status_code != 414, again.text


def _watch(call: Callable[[], Any], stop: threading.Event, times: list[float]) -> None:
    while not stop.is_set():
        began = time.monotonic()
        call()
        times.append(time.monotonic() - began)


@pytest.fixture
def listing(stack: LocalStack) -> Iterator[Callable[[], int]]:
    s = stack.settings
    with httpx.Client(timeout=30) as client:
        yield (
            lambda: (
                client.get(
                    f"{s.api_url}/rest/v1/cars?select=id&limit=1", headers={"apikey": s.anon_key}
                ).status_code
            )
        )


def test_the_slowest_call_allowed_does_not_stop_other_callers(
    stack: LocalStack, listing: Callable[[], int]
) -> None:
    """The most keys a call within the limit can hold (2 KiB of one- and two-letter keys)
    is answered within a second, and other callers are answered meanwhile."""
    s = stack.settings
    names = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    names += [a + b for a in names for b in names]
    body = b"{"
    for name in names:
        item = f'"{name}":0,'.encode()
        if len(body) + len(item) + 1 > 2048:
            break
        body += item
    body = body[:-1] + b"}"
    stop, times = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(listing, stop, times))
    watcher.start()
    try:
        with httpx.Client(timeout=30) as client:
            began = time.monotonic()
            for _ in range(3):
                slow = client.post(
                    f"{s.api_url}/rest/v1/rpc/book_car_atomic",
                    headers={"apikey": s.anon_key, "content-type": "application/json"},
                    content=body,
                )
                assert slow.status_code == 404, slow.text[:200]  # no function takes those keys
            took = (time.monotonic() - began) / 3
    finally:
        stop.set()
        watcher.join()
    assert took < 1.0, f"a call of {len(body)} bytes took {took:.2f} s"
    assert times and max(times) < 2.0, f"other callers waited up to {max(times):.2f} s"


def test_hs256_tokens_without_exp_are_accepted_and_exp_still_enforced(stack: LocalStack) -> None:
    """As GoTrue, PostgREST and Storage: a service token minted with the JWT secret need
    not expire; one that says it expired is refused everywhere."""
    s = stack.settings
    forever = jwt.encode({"role": "service_role", "iss": "supabase-demo"}, s.jwt_secret, algorithm="HS256")
    gone = jwt.encode({"role": "service_role", "exp": int(time.time()) - 60}, s.jwt_secret, algorithm="HS256")
    with httpx.Client(base_url=s.api_url, timeout=30) as client:
        for path in ("/auth/v1/admin/users", "/storage/v1/bucket", "/rest/v1/cars?select=id&limit=1"):
            ok = client.get(path, headers={"apikey": s.anon_key, "Authorization": f"Bearer {forever}"})
            assert ok.status_code == 200, (path, ok.text)
            refused = client.get(path, headers={"apikey": s.anon_key, "Authorization": f"Bearer {gone}"})
            assert refused.status_code in {401, 403}, (path, refused.text)
