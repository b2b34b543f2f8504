"""Storage routes besides uploads, as hosted Supabase Storage answers them: list-v2, one
object's delete and info, download names, exact routing, and upload fields that become
response headers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client, unique_email

from ..helpers import stack_db

BUCKET = "car-images"


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Any:
    client = supabase_client(stack.info().api_url, stack.info().anon_key)
    client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    return client


@pytest.fixture
def folder(admin: Any) -> Iterator[str]:
    """A folder of the test's own in the bucket, emptied afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:10]}/"
    yield prefix
    bucket = admin.storage.from_(BUCKET)
    while True:
        page = bucket.list_v2({"prefix": prefix, "limit": 1000})
        if not page.objects:
            break
        bucket.remove([o.name for o in page.objects])


def _headers(stack: LocalStack, client: Any) -> dict[str, str]:
    return {
        "apikey": stack.info().anon_key,
        "Authorization": f"Bearer {client.auth.get_session().access_token}",
    }


def _state(stack: LocalStack) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        rows = conn.execute("select bucket_id, name, version from storage.objects order by 1, 2").fetchall()
    files = sorted(p.name for p in (stack.settings.storage_dir / "objects").glob("*"))
    return rows, files


def _put(admin: Any, *names: str) -> None:
    for name in names:
        admin.storage.from_(BUCKET).upload(name, PNG, {"content-type": "image/png"})


# list-v2 -------------------------------------------------------------------------------
def test_list_v2_pages_with_a_cursor_through_every_object(admin: Any, folder: str) -> None:
    names = [f"{folder}{c}.png" for c in "edcba"]
    _put(admin, *names, f"{folder}sub/deep.png")
    bucket = admin.storage.from_(BUCKET)
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        options: dict[str, Any] = {"prefix": folder, "limit": 2}
        if cursor:
            options["cursor"] = cursor
        page = bucket.list_v2(options)
        pages += 1
        seen += [o.name for o in page.objects]
        assert page.folders == []  # no delimiter: every object, at any depth
        if not page.hasNext:
            assert page.nextCursor is None
            break
        cursor = page.nextCursor
        assert cursor
    assert seen == sorted([*names, f"{folder}sub/deep.png"]) and pages == 3

    newest_first = bucket.list_v2(
        {"prefix": folder, "limit": 10, "sortBy": {"column": "created_at", "order": "desc"}}
    )
    assert [o.name for o in newest_first.objects] == [f"{folder}sub/deep.png", *names[::-1]]


def test_list_v2_with_a_delimiter_shows_folders(admin: Any, folder: str) -> None:
    _put(admin, f"{folder}a.png", f"{folder}sub/b.png", f"{folder}sub/c/d.png", f"{folder}z/e.png")
    page = admin.storage.from_(BUCKET).list_v2({"prefix": folder, "with_delimiter": True})
    assert [f.name for f in page.folders] == [f"{folder}sub/", f"{folder}z/"]
    assert [f.key for f in page.folders] == ["sub", "z"]
    assert [(o.name, o.key) for o in page.objects] == [(f"{folder}a.png", "a.png")]
    assert page.objects[0].metadata and page.objects[0].metadata["mimetype"] == "image/png"
    first = admin.storage.from_(BUCKET).list_v2({"prefix": folder, "with_delimiter": True, "limit": 1})
    rest = admin.storage.from_(BUCKET).list_v2(
        {"prefix": folder, "with_delimiter": True, "limit": 10, "cursor": first.nextCursor}
    )
    assert first.hasNext and [o.name for o in first.objects] == [f"{folder}a.png"]
    assert [f.name for f in rest.folders] == [f"{folder}sub/", f"{folder}z/"] and not rest.hasNext


def test_list_v2_refuses_bad_input_in_storage_shape(stack: LocalStack, admin: Any) -> None:
    for body in ({"limit": 0}, {"limit": "ten"}, {"sortBy": {"column": "size"}}, {"cursor": "not-a-cursor"}):
        reply = httpx.post(
            f"{stack.info().storage_url}/object/list-v2/{BUCKET}", json=body, headers=_headers(stack, admin)
        )
        assert reply.status_code == 400, body
        assert reply.json()["statusCode"] == "400" and reply.json()["message"], body


# delete one, info ----------------------------------------------------------------------
def test_delete_one_object(stack: LocalStack, admin: Any, folder: str) -> None:
    name, kept = f"{folder}gone.png", f"{folder}kept.png"
    _put(admin, name, kept)
    url = f"{stack.info().storage_url}/object/{BUCKET}/{name}"
    user = supabase_client(stack.info().api_url, stack.info().anon_key)
    user.auth.sign_up({"email": unique_email(), "password": "correct-horse-9"})
    refused = httpx.delete(url, headers=_headers(stack, user))
    assert refused.json() == {
        "statusCode": "403",
        "error": "Unauthorized",
        "code": "AccessDenied",
        "message": "Access denied",
    }
    before = _state(stack)
    deleted = httpx.delete(url, headers=_headers(stack, admin))
    assert (deleted.status_code, deleted.json()) == (200, {"message": "Successfully deleted"})
    rows, files = _state(stack)
    assert len(rows) == len(before[0]) - 1 and len(files) == len(before[1]) - 1
    assert not admin.storage.from_(BUCKET).exists(name) and admin.storage.from_(BUCKET).exists(kept)
    again = httpx.delete(url, headers=_headers(stack, admin))
    assert (again.json()["statusCode"], again.json()["error"]) == ("404", "not_found")


def test_info_public_authenticated_and_plain(stack: LocalStack, admin: Any, folder: str) -> None:
    name = f"{folder}info.png"
    _put(admin, name)
    info = admin.storage.from_(BUCKET).info(name)
    assert set(info) == {
        "id",
        "name",
        "version",
        "bucket_id",
        "size",
        "content_type",
        "cache_control",
        "etag",
        "metadata",
        "last_modified",
        "created_at",
    }
    assert (info["name"], info["bucket_id"], info["size"], info["content_type"]) == (
        name,
        BUCKET,
        len(PNG),
        "image/png",
    )
    base = stack.info().storage_url
    public = httpx.get(f"{base}/object/info/public/{BUCKET}/{name}")  # no key, as a public URL
    authenticated = httpx.get(
        f"{base}/object/info/authenticated/{BUCKET}/{name}", headers=_headers(stack, admin)
    )
    assert public.json() == authenticated.json() == info
    missing = httpx.get(f"{base}/object/info/public/{BUCKET}/{folder}nope.png")
    assert (missing.json()["statusCode"], missing.json()["error"]) == ("404", "not_found")
    no_key = httpx.get(f"{base}/object/info/authenticated/{BUCKET}/{name}")
    assert no_key.status_code == 401


def test_public_info_of_a_private_bucket_is_not_found(stack: LocalStack) -> None:
    info = stack.info()
    service = supabase_client(info.api_url, info.service_role_key)
    private = f"p-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(private, options={"public": False})
    try:
        service.storage.from_(private).upload("a.png", PNG, {"content-type": "image/png"})
        hidden = httpx.get(f"{info.storage_url}/object/info/public/{private}/a.png")
        assert hidden.json()["error"] == "Bucket not found"
        assert service.storage.from_(private).info("a.png")["size"] == len(PNG)
    finally:
        service.storage.empty_bucket(private)
        service.storage.delete_bucket(private)


# Download names ------------------------------------------------------------------------
def test_downloads_name_the_file_as_storage_does(stack: LocalStack, admin: Any, folder: str) -> None:
    name = f"{folder}photo.png"
    _put(admin, name)
    url = admin.storage.from_(BUCKET).get_public_url(name)
    named = httpx.get(url, params={"download": "my car (1) €.png"})
    enc = "my%20car%20(1)%20%E2%82%AC.png"  # encodeURIComponent's encoding
    assert named.headers["content-disposition"] == f"attachment; filename={enc}; filename*=UTF-8''{enc}"
    own = httpx.get(url + "?download")
    assert own.headers["content-disposition"] == "attachment;"  # the browser names it from the URL
    assert "content-disposition" not in httpx.get(url).headers
    # The authenticated download takes it too; storage3 passes it as a query parameter.
    assert admin.storage.from_(BUCKET).download(name, query_params={"download": "x.png"}) == PNG
    auth = httpx.get(
        f"{stack.info().storage_url}/object/{BUCKET}/{name}?download=a%0D%0Ab.png",
        headers=_headers(stack, admin),
    )
    assert (
        auth.headers["content-disposition"]
        == "attachment; filename=a%0D%0Ab.png; filename*=UTF-8''a%0D%0Ab.png"
    )


# Exact routing -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/object/upload/car-images/x.png"),  # "upload" is a route word, not a bucket
        ("POST", "/object/upload/sign/car-images"),  # no object name
        ("PATCH", f"/object/{BUCKET}/x.png"),
        ("POST", f"/object/info/{BUCKET}/x.png"),
        ("DELETE", "/object/move"),
        ("GET", "/nothing/here"),
    ],
)
def test_unknown_routes_are_404_in_storage_shape_and_write_nothing(
    stack: LocalStack, admin: Any, method: str, path: str
) -> None:
    before = _state(stack)
    reply = httpx.request(
        method,
        stack.info().storage_url + path,
        headers=_headers(stack, admin),
        files={"file": ("x.png", PNG, "image/png")} if method in ("POST", "PATCH") else None,
    )
    assert reply.status_code == 404
    assert reply.json() == {
        "statusCode": "404",
        "error": "Not Found",
        "code": "InvalidRequest",
        "message": f"Route {method}:{path} not found",
    }
    assert _state(stack) == before


def test_posting_a_file_to_the_sign_route_signs_and_uploads_nothing(stack: LocalStack, admin: Any) -> None:
    """The route that was once taken as an upload into a bucket named "upload"."""
    before = _state(stack)
    reply = httpx.post(
        f"{stack.info().storage_url}/object/upload/sign/{BUCKET}/t-{uuid.uuid4().hex}.png",
        headers=_headers(stack, admin),
        files={"file": ("x.png", PNG, "image/png")},
    )
    assert reply.status_code == 200 and set(reply.json()) == {"url", "token"}
    assert _state(stack) == before


# Fields that become headers ------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        {"cacheControl": "3600\r\nSet-Cookie: a=b"},
        {"cacheControl": "3600\n"},
        {"cacheControl": "3600", "contentType": "image/png\r\nX-Evil: 1"},
        {"cacheControl": "3600", "contentType": "image/png; name=\u20ac"},  # not Latin-1
    ],
)
def test_header_breaking_upload_fields_are_refused(
    stack: LocalStack, admin: Any, data: dict[str, str]
) -> None:
    """A header cannot carry them, so every later download of the object would fail. (A
    raw upload's own content-type header cannot hold them at all: HTTP refuses first.)"""
    before = _state(stack)
    reply = httpx.post(
        f"{stack.info().storage_url}/object/{BUCKET}/t-{uuid.uuid4().hex}.png",
        headers=_headers(stack, admin),
        data=data,
        files={"file": ("x.png", PNG, "image/png")},
    )
    assert reply.status_code == 400
    assert reply.json()["statusCode"] == "400" and reply.json()["error"] == "InvalidRequest"
    assert "header" in reply.json()["message"]
    assert _state(stack) == before
