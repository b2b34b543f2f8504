"""What a page on another origin can do with the API port beyond the app's flows: read
every error it is answered (not "Failed to fetch"), download images with <img>, fetch()
and <a download>, byte ranges included, and be stopped where the gateway stops it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from carbook_stack.manager import LocalStack
from tests.helpers import stack_db

from .conftest import IMAGE, open_app

#: fetch() from the page: the status and JSON body it could read, or the error it got.
FETCH = """async ([url, init]) => {
  try {
    const r = await fetch(url, init)
    const text = await r.text()
    let body = null
    try { body = JSON.parse(text) } catch (e) {}
    return { status: r.status, body, requestId: r.headers.get('x-request-id') }
  } catch (e) {
    return { error: String(e) }
  }
}"""


@pytest.fixture(scope="module")
def uploaded(stack: LocalStack) -> str:
    """The seed's image uploaded under a name of this module's own (admin, supabase-py)."""
    from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, supabase_client

    client = supabase_client(stack.settings.api_url, stack.settings.publishable_key)
    client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    name = f"browser/download-{uuid.uuid4().hex[:8]}.png"
    client.storage.from_("car-images").upload(name, IMAGE.read_bytes(), {"content-type": "image/png"})
    return name


def errors(stack: LocalStack) -> list[tuple[str, str, dict[str, Any], int, str]]:
    s = stack.settings
    api, key = s.api_url, {"apikey": s.publishable_key}
    return [
        ("no apikey", f"{api}/rest/v1/cars", {}, 401, "No API key found in request"),
        ("unknown key", f"{api}/auth/v1/settings", {"headers": {"apikey": "nope"}}, 401, "Invalid API key"),
        ("no apikey, storage", f"{api}/storage/v1/bucket", {}, 401, "No API key found in request"),
        ("unknown route", f"{api}/nowhere/v1/x", {"headers": key}, 404, "no Route matched with those values"),
        (
            "REST error",
            f"{api}/rest/v1/no_such_table",
            {"headers": key},
            404,
            'relation "public.no_such_table" does not exist',
        ),
        (
            "REST body too large (nginx)",
            f"{api}/rest/v1/rpc/book_car_atomic",
            {
                "method": "POST",
                "headers": {**key, "content-type": "application/json"},
                "body": "x" * 1_100_000,
            },
            413,
            "Payload too large",
        ),
        (
            "Auth error",
            f"{api}/auth/v1/token?grant_type=password",
            {
                "method": "POST",
                "headers": {**key, "content-type": "application/json"},
                "body": '{"email": "nobody@example.test", "password": "wrong-password"}',
            },
            400,
            "Invalid login credentials",
        ),
        (
            "Storage error",
            f"{api}/storage/v1/object/car-images/missing/{uuid.uuid4().hex}.png",
            {"headers": key},
            400,
            "Object not found",
        ),
        (
            "secret key",
            f"{api}/auth/v1/admin/users",
            {"headers": {"apikey": s.secret_key}},
            401,
            "Forbidden use of secret API key in browser",
        ),
    ]


def test_every_error_is_readable_by_the_page(stack: LocalStack, web_origin: str, new_context: Any) -> None:
    page = open_app(new_context(), web_origin, stack)
    for name, url, init, status, message in errors(stack):
        got = page.evaluate(FETCH, [url, init])
        assert "error" not in got, (name, got)
        assert got["status"] == status, (name, got)
        body = got["body"] or {}
        said = body.get("message") or body.get("msg") or body.get("error_description") or ""
        assert message in said, (name, got)
        assert got["requestId"], name  # an exposed header, readable by the script


def test_a_method_no_service_allows_is_stopped_by_the_browser(
    stack: LocalStack, web_origin: str, new_context: Any
) -> None:
    page = open_app(new_context(), web_origin, stack)
    s = stack.settings
    got = page.evaluate(
        FETCH, [f"{s.api_url}/rest/v1/cars", {"method": "PROPFIND", "headers": {"apikey": s.publishable_key}}]
    )
    # The preflight lists the methods the gateway allows; PROPFIND is not one: the browser
    # refuses to send it (as it would against the Supabase CLI's gateway).
    assert got == {"error": "TypeError: Failed to fetch"}


def test_images_download_cross_origin_whole_and_by_range(
    stack: LocalStack, web_origin: str, new_context: Any, uploaded: str
) -> None:
    s = stack.settings
    data = IMAGE.read_bytes()
    page = open_app(new_context(), web_origin, stack)
    public = f"{s.api_url}/storage/v1/object/public/car-images/{uploaded}"
    got = page.evaluate(
        """async (url) => {
          const whole = await fetch(url)
          const bytes = new Uint8Array(await whole.arrayBuffer())
          const part = await fetch(url, { headers: { Range: 'bytes=1-3' } })
          const img = new Image()
          img.src = url
          await img.decode()
          return {
            status: whole.status, length: bytes.length, etag: whole.headers.get('etag'),
            contentLength: whole.headers.get('content-length'), type: whole.headers.get('content-type'),
            partStatus: part.status, partRange: part.headers.get('content-range'),
            part: new TextDecoder().decode(await part.arrayBuffer()), width: img.naturalWidth,
          }
        }""",
        public,
    )
    assert got["status"] == 200 and got["length"] == len(data) and got["type"] == "image/png"
    assert got["contentLength"] == str(len(data)) and got["etag"]
    assert (got["partStatus"], got["partRange"], got["part"]) == (206, f"bytes 1-3/{len(data)}", "PNG")
    assert got["width"] > 0

    # A signed URL (made by the page's own anonymous client) serves ranges too.
    signed = page.evaluate(
        """async (name) => {
          const { data, error } = await db.storage.from('car-images').createSignedUrl(name, 60)
          if (error) return { error: error.message }
          const r = await fetch(data.signedUrl, { headers: { Range: 'bytes=-4' } })
          return { status: r.status, range: r.headers.get('content-range'), size: (await r.arrayBuffer()).byteLength }
        }""",
        uploaded,
    )
    assert signed == {"status": 206, "range": f"bytes {len(data) - 4}-{len(data) - 1}/{len(data)}", "size": 4}

    # <a download> to ?download=: a file saved under the name the page asked for.
    with page.expect_download() as info:
        page.evaluate(
            """(url) => { const a = document.createElement('a'); a.href = url + '?download=my-car.png';
                          a.download = ''; document.body.append(a); a.click() }""",
            public,
        )
    download = info.value
    assert download.suggested_filename == "my-car.png"
    assert Path(download.path()).read_bytes() == data


def test_the_page_changes_nothing_it_is_refused(stack: LocalStack, web_origin: str, new_context: Any) -> None:
    """The refused requests above are refused before anything is written."""
    email = f"leak-{uuid.uuid4().hex[:8]}@example.test"
    page = open_app(new_context(), web_origin, stack)
    s = stack.settings
    got = page.evaluate(
        FETCH,
        [
            f"{s.api_url}/auth/v1/admin/users",
            {
                "method": "POST",
                "headers": {"apikey": s.secret_key, "content-type": "application/json"},
                "body": f'{{"email": "{email}", "password": "x-password-1"}}',
            },
        ],
    )
    assert got["status"] == 401
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from auth.users where email = %s", (email,)).fetchone() == (0,)
