"""/rest/v1 and /storage/v1 through the plain supabase-py client, and raw HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError

from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, supabase_client, unique_email

from ..helpers import stack_db

BUCKET = "car-images"


def _signed_in(stack: LocalStack, email: str | None = None, password: str = "correct-horse-9") -> Any:
    info = stack.info()
    client = supabase_client(info.api_url, info.anon_key)
    if email is None:
        client.auth.sign_up({"email": unique_email(), "password": password})
    else:
        client.auth.sign_in_with_password({"email": email, "password": password})
    return client


def _admin(stack: LocalStack) -> Any:
    return _signed_in(stack, ADMIN_EMAIL, ADMIN_PASSWORD)


def _new_car(stack: LocalStack, *, published: bool = True) -> str:
    with stack_db(stack) as conn:
        row = conn.execute(
            """insert into public.cars (make, model, year, image_path, is_published, price_in_paise)
               values ('Skoda', 'Kushaq', 2024, 'cars/k.png', %s, 1200000) returning id::text""",
            (published,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _storage_state(stack: LocalStack) -> tuple[Any, ...]:
    with stack_db(stack) as conn:
        rows = conn.execute("select bucket_id, name, version from storage.objects order by 1, 2").fetchall()
    files = sorted(p.name for p in (stack.settings.storage_dir / "objects").glob("*"))
    return rows, files


# REST ---------------------------------------------------------------------------------
def test_anon_and_users_see_only_published_available_cars(stack: LocalStack) -> None:
    hidden = _new_car(stack, published=False)
    info = stack.info()
    anon = supabase_client(info.api_url, info.anon_key)
    for client in (anon, _signed_in(stack)):
        rows = client.table("cars").select("id, is_published, booking_status").limit(500).execute().data
        assert rows and all(r["is_published"] and r["booking_status"] == "available" for r in rows)
        # Asked by id: PostgREST caps a reply at 1,000 rows, so "not among the rows" alone
        # would pass for any car once the shared stack holds more than that.
        assert client.table("cars").select("id").eq("id", hidden).execute().data == []
    admin = _admin(stack)
    assert admin.table("cars").select("id").eq("id", hidden).execute().data == [{"id": hidden}]
    counted = admin.table("cars").select("id", count="exact").limit(1).execute().count
    with stack_db(stack) as conn:
        total = conn.execute("select count(*) from public.cars").fetchone()
    assert total is not None and counted == total[0]


def test_rpc_books_for_a_signed_in_user_and_anon_cannot(stack: LocalStack) -> None:
    car = _new_car(stack)
    info = stack.info()
    anon = supabase_client(info.api_url, info.anon_key)
    with pytest.raises(APIError) as err:
        anon.rpc("book_car_atomic", {"car_id": car}).execute()
    assert err.value.code == "42501"
    user = _signed_in(stack)
    result = user.rpc("book_car_atomic", {"car_id": car}).execute().data
    assert result["code"] == "booked"
    assert result["booked_by"] == user.auth.get_user().user.id
    second = _signed_in(stack).rpc("book_car_atomic", {"car_id": car}).execute().data
    assert second["message"] == "Already booked. Be fast next time."


# Storage ------------------------------------------------------------------------------
def test_admin_upload_public_url_serves_the_same_bytes(stack: LocalStack) -> None:
    admin = _admin(stack)
    # A folder of this test's own: the first page of a shared one (the soak fills `cars/`
    # with hundreds of uploads) need not hold a new name, whatever the order.
    folder = f"cars/t-{uuid.uuid4().hex[:12]}"
    name = f"{folder}/car.png"
    reply = admin.storage.from_(BUCKET).upload(name, PNG, {"content-type": "image/png"})
    assert reply.full_path == f"{BUCKET}/{name}"
    url = admin.storage.from_(BUCKET).get_public_url(name)
    got = httpx.get(url)  # no apikey: a public URL works in any <img src>
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, PNG, "image/png")
    assert admin.storage.from_(BUCKET).download(name) == PNG
    listed = admin.storage.from_(BUCKET).list(folder)
    assert [i["name"] for i in listed] == ["car.png"]


def test_non_admin_upload_is_refused_by_rls_leaving_nothing(stack: LocalStack) -> None:
    user = _signed_in(stack)
    before = _storage_state(stack)
    with pytest.raises(StorageApiError) as err:
        user.storage.from_(BUCKET).upload(f"cars/{uuid.uuid4().hex}.png", PNG, {"content-type": "image/png"})
    assert err.value.status == "403"
    assert err.value.message == "new row violates row-level security policy"
    assert _storage_state(stack) == before


def test_too_large_and_wrong_type_are_refused(stack: LocalStack) -> None:
    admin = _admin(stack)
    before = _storage_state(stack)
    big = PNG + b"\0" * (5 * 1024 * 1024)
    with pytest.raises(StorageApiError) as large:
        admin.storage.from_(BUCKET).upload(f"cars/{uuid.uuid4().hex}.png", big, {"content-type": "image/png"})
    assert (large.value.status, large.value.code) == ("413", "Payload too large")
    assert large.value.message == "The object exceeded the maximum allowed size (5 MiB)"  # names the limit
    with pytest.raises(StorageApiError) as wrong:
        admin.storage.from_(BUCKET).upload(
            f"cars/{uuid.uuid4().hex}.txt", b"hello", {"content-type": "text/plain"}
        )
    assert (wrong.value.status, wrong.value.code) == ("415", "invalid_mime_type")
    assert wrong.value.message == "mime type text/plain is not supported"
    assert _storage_state(stack) == before


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "cars%2F..%2F..%2F..%2Fescape.png", "%2Fabs.png", "a%00b.png", "x" * 1100],
)
def test_names_cannot_escape_the_storage_folder(stack: LocalStack, name: str) -> None:
    token = _admin(stack).auth.get_session().access_token
    info = stack.info()
    before = _storage_state(stack)
    reply = httpx.post(
        f"{info.storage_url}/object/{BUCKET}/{name}",
        headers={"apikey": info.anon_key, "Authorization": f"Bearer {token}"},
        files={"file": ("x.png", PNG, "image/png")},
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "InvalidKey"
    assert _storage_state(stack) == before
    root = stack.settings.state_dir
    assert not (root.parent / "escape.png").exists() and not Path("/etc/passwd").read_bytes().startswith(PNG)


def test_remove_deletes_row_and_file(stack: LocalStack) -> None:
    admin = _admin(stack)
    name = f"cars/{uuid.uuid4().hex}.png"
    admin.storage.from_(BUCKET).upload(name, PNG, {"content-type": "image/png"})
    removed = admin.storage.from_(BUCKET).remove([name])
    assert [r["name"] for r in removed] == [name]
    assert httpx.get(admin.storage.from_(BUCKET).get_public_url(name)).status_code == 400
    with stack_db(stack) as conn:
        assert conn.execute("select count(*) from storage.objects where name = %s", (name,)).fetchone() == (
            0,
        )


# Security -----------------------------------------------------------------------------
def _forged(stack: LocalStack, **overrides: Any) -> str:
    import time

    import jwt

    claims = {"role": "authenticated", "sub": str(uuid.uuid4()), "exp": int(time.time()) + 600}
    secret = overrides.pop("secret", stack.settings.jwt_secret)
    alg = overrides.pop("alg", "HS256")
    claims.update(overrides)
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, secret, algorithm=alg)


def _bad_requests(stack: LocalStack) -> dict[str, dict[str, str]]:
    info = stack.info()
    key = info.anon_key
    return {
        "missing apikey": {},
        "wrong apikey": {"apikey": "not-a-key"},
        "another secret": {"apikey": key, "Authorization": "Bearer " + _forged(stack, secret="x" * 40)},
        "expired": {"apikey": key, "Authorization": "Bearer " + _forged(stack, exp=1_600_000_000)},
        "alg none": {"apikey": key, "Authorization": "Bearer " + _forged(stack, alg="none")},
    }


@pytest.mark.parametrize("case", ["missing apikey", "wrong apikey", "another secret", "expired", "alg none"])
def test_bad_credentials_are_refused_with_401_and_change_nothing(stack: LocalStack, case: str) -> None:
    headers = _bad_requests(stack)[case]
    info = stack.info()
    car = _new_car(stack)
    before = _storage_state(stack)
    rpc = httpx.post(f"{info.rest_url}/rpc/book_car_atomic", json={"car_id": car}, headers=headers)
    upload = httpx.post(
        f"{info.storage_url}/object/{BUCKET}/cars/{uuid.uuid4().hex}.png",
        headers=headers,
        files={"file": ("x.png", PNG, "image/png")},
    )
    user = httpx.get(f"{info.auth_url}/user", headers=headers)
    assert (rpc.status_code, upload.status_code) == (401, 401)
    assert user.status_code in (401, 403)  # GoTrue answers a bad JWT with 403 bad_jwt
    with stack_db(stack) as conn:
        status = conn.execute("select booking_status from public.cars where id = %s", (car,)).fetchone()
    assert status == ("available",)
    assert _storage_state(stack) == before


def test_upsert_move_copy_info_and_signed_urls(stack: LocalStack) -> None:
    admin = _admin(stack)
    bucket = admin.storage.from_(BUCKET)
    name = f"cars/{uuid.uuid4().hex}.png"
    bucket.upload(name, PNG, {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as dup:
        bucket.upload(name, PNG, {"content-type": "image/png"})
    assert (dup.value.status, dup.value.code) == ("409", "Duplicate")
    newer = PNG + b"v2"
    bucket.upload(name, newer, {"content-type": "image/png", "upsert": "true"})
    assert bucket.download(name) == newer
    assert bucket.info(name)["size"] == len(newer)

    moved = name.replace(".png", "-moved.png")
    bucket.move(name, moved)
    assert bucket.download(moved) == newer and not bucket.exists(name)
    copied = name.replace(".png", "-copy.png")
    bucket.copy(moved, copied)
    assert bucket.download(copied) == newer

    signed = bucket.create_signed_url(copied, 60)["signedURL"]
    assert httpx.get(signed).content == newer  # no apikey needed, like a hosted signed URL
    tampered = signed.replace("-copy.png", "-moved.png")
    assert httpx.get(tampered).status_code == 400
    many = bucket.create_signed_urls([copied, "cars/missing.png"], 60)
    assert [m["error"] is None for m in many] == [True, False]

    # Every version replaced or removed left no file behind.
    bucket.remove([moved, copied])
    assert _stored_files(stack) == _stored_versions(stack)


def test_buckets_with_the_service_role_only(stack: LocalStack) -> None:
    info = stack.info()
    service = supabase_client(info.api_url, info.service_role_key)
    name = f"b-{uuid.uuid4().hex[:8]}"
    service.storage.create_bucket(name, options={"public": False, "file_size_limit": "1MB"})
    got = service.storage.get_bucket(name)
    assert (got.id, got.public, got.file_size_limit) == (name, False, 1_000_000)
    assert name in {b.name for b in service.storage.list_buckets()}
    service.storage.update_bucket(name, {"public": True, "allowed_mime_types": ["image/png"]})
    assert service.storage.get_bucket(name).allowed_mime_types == ["image/png"]
    service.storage.from_(name).upload("a.png", PNG, {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as not_empty:
        service.storage.delete_bucket(name)
    assert not_empty.value.status == "409"
    service.storage.empty_bucket(name)
    service.storage.delete_bucket(name)
    with pytest.raises(StorageApiError) as gone:
        service.storage.get_bucket(name)
    assert gone.value.status == "404"

    user = _signed_in(stack)
    with pytest.raises(StorageApiError) as refused:
        user.storage.create_bucket(f"b-{uuid.uuid4().hex[:8]}")
    assert refused.value.status == "403"
    assert user.storage.list_buckets() == []  # no bucket policies: users see none


def test_oversize_json_body_is_413(stack: LocalStack) -> None:
    info = stack.info()
    body = b'{"car_id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    reply = httpx.post(
        f"{info.rest_url}/rpc/book_car_atomic",
        content=body,
        headers={"apikey": info.anon_key, "content-type": "application/json"},
    )
    assert reply.status_code == 413


def test_seeded_cars_have_their_images(stack: LocalStack) -> None:
    from carbook_sdk import supabase_dir

    info = stack.info()
    anon = supabase_client(info.api_url, info.anon_key)
    car = (
        anon.table("cars")
        .select("image_path")
        .eq("id", "1e5a9c1d-4b7d-4f2e-9a63-5d8e7c000001")
        .execute()
        .data[0]
    )
    got = httpx.get(anon.storage.from_(BUCKET).get_public_url(car["image_path"]))
    assert got.status_code == 200
    assert got.content == (supabase_dir() / "images" / "sample-car.png").read_bytes()


def test_unicode_download_names_and_bad_list_input(stack: LocalStack) -> None:
    admin = _admin(stack)
    bucket = admin.storage.from_(BUCKET)
    name = f"cars/車-{uuid.uuid4().hex[:6]}.png"
    bucket.upload(name, PNG, {"content-type": "image/png"})
    got = httpx.get(bucket.get_public_url(name, {"download": name.rsplit("/", 1)[-1]}))
    assert got.status_code == 200 and got.content == PNG
    assert "filename*=UTF-8''%E8%BB%8A-" in got.headers["content-disposition"]
    token = admin.auth.get_session().access_token
    info = stack.info()
    for body in ({"limit": "ten"}, {"sortBy": "name"}, {"offset": -1}):
        reply = httpx.post(
            f"{info.storage_url}/object/list/{BUCKET}",
            json={"prefix": "cars", **body},
            headers={"apikey": info.anon_key, "Authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 400 and reply.json()["error"] == "InvalidRequest", body
    bucket.remove([name])


def test_put_updates_only_and_racing_upserts_leave_no_file_behind(stack: LocalStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    admin = _admin(stack)
    bucket = admin.storage.from_(BUCKET)
    with pytest.raises(StorageApiError) as missing:
        bucket.update(f"cars/{uuid.uuid4().hex}.png", PNG, {"content-type": "image/png"})
    assert missing.value.status == "404"

    # Racing upserts of a name that does not exist yet are the hard case: no row to lock.
    names = [f"cars/{uuid.uuid4().hex}.png" for _ in range(16)]
    token = admin.auth.get_session().access_token
    info = stack.info()

    def upsert(job: tuple[str, int]) -> int:
        name, i = job
        return httpx.post(
            f"{info.storage_url}/object/{BUCKET}/{name}",
            headers={"apikey": info.anon_key, "Authorization": f"Bearer {token}", "x-upsert": "true"},
            files={"file": ("x.png", PNG + bytes([i]), "image/png")},
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        for name in names:
            assert set(pool.map(upsert, [(name, i) for i in range(8)])) == {200}
    assert _stored_files(stack) == _stored_versions(stack)
    bucket.remove(names)


def _stored_files(stack: LocalStack) -> set[str]:
    return {p.name for p in (stack.settings.storage_dir / "objects").iterdir() if not p.name.startswith(".")}


def _stored_versions(stack: LocalStack) -> set[str]:
    with stack_db(stack) as conn:
        return {r[0] for r in conn.execute("select version from storage.objects")}


def test_copies_and_moves_racing_upserts_leave_no_file_behind(stack: LocalStack) -> None:
    """A copy or move onto a name that an upsert writes at the same moment: every replaced
    version's file goes, whichever wins."""
    from concurrent.futures import ThreadPoolExecutor

    admin = _admin(stack)
    token = admin.auth.get_session().access_token
    info = stack.info()
    headers = {"apikey": info.anon_key, "Authorization": f"Bearer {token}"}
    tag = uuid.uuid4().hex[:8]
    sources = [f"race-{tag}/src-{i}.png" for i in range(24)]
    for name in sources:
        admin.storage.from_(BUCKET).upload(name, PNG, {"content-type": "image/png"})

    def transfer(job: tuple[str, int]) -> int:
        kind, i = job
        if kind == "upsert":
            return httpx.post(
                f"{info.storage_url}/object/{BUCKET}/race-{tag}/dst-{i}.png",
                headers={**headers, "x-upsert": "true"},
                files={"file": ("x.png", PNG + b"u", "image/png")},
            ).status_code
        body = {"bucketId": BUCKET, "sourceKey": sources[i], "destinationKey": f"race-{tag}/dst-{i}.png"}
        # Half the pairs copy, half move; a loser may find the name taken (409-like 400).
        return httpx.post(f"{info.storage_url}/object/{kind}", json=body, headers=headers).status_code

    jobs = [(("copy" if i % 2 else "move"), i) for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(transfer, [j for i, job in enumerate(jobs) for j in (job, ("upsert", i))]))
    assert set(statuses) <= {200, 400}, statuses  # never a 500
    assert _stored_files(stack) == _stored_versions(stack)
    with stack_db(stack) as conn:
        left = [
            r[0]
            for r in conn.execute("select name from storage.objects where name like %s", (f"race-{tag}/%",))
        ]
    admin.storage.from_(BUCKET).remove(left)


def test_downloads_racing_replacements_always_get_a_whole_version(stack: LocalStack) -> None:
    """Readers never see a 404 or a broken reply while writers replace the object."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    admin = _admin(stack)
    bucket = admin.storage.from_(BUCKET)
    name = f"cars/{uuid.uuid4().hex}.png"
    bodies = [PNG + bytes([i]) * 40_000 for i in range(30)]
    bucket.upload(name, bodies[0], {"content-type": "image/png"})
    url = bucket.get_public_url(name)
    done = threading.Event()

    def write() -> None:
        try:
            for body in bodies[1:]:
                bucket.update(name, body, {"content-type": "image/png"})
        finally:
            done.set()

    def read(_: int) -> list[tuple[int, bool]]:
        seen = []
        with httpx.Client() as client:
            while not done.is_set():
                reply = client.get(url)
                seen.append((reply.status_code, reply.content in bodies))
        return seen

    with ThreadPoolExecutor(max_workers=4) as pool:
        readers = [pool.submit(read, i) for i in range(3)]
        write()
        results = [r for f in readers for r in f.result()]
    assert results and set(results) == {(200, True)}
    assert _stored_files(stack) == _stored_versions(stack)
    bucket.remove([name])


def test_ranges_and_head_on_downloads(stack: LocalStack) -> None:
    admin = _admin(stack)
    bucket = admin.storage.from_(BUCKET)
    name = f"cars/{uuid.uuid4().hex}.png"
    bucket.upload(name, PNG, {"content-type": "image/png"})
    url = bucket.get_public_url(name)
    size = len(PNG)
    first = httpx.get(url, headers={"Range": "bytes=0-3"})
    assert (first.status_code, first.content) == (206, PNG[:4])
    assert first.headers["content-range"] == f"bytes 0-3/{size}"
    tail = httpx.get(url, headers={"Range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, PNG[-5:])
    rest = httpx.get(url, headers={"Range": "bytes=10-"})
    assert (rest.status_code, rest.content) == (206, PNG[10:])
    beyond = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert (beyond.status_code, beyond.headers["content-range"]) == (416, f"bytes */{size}")
    for odd in ("bytes=0-1,4-5", "lines=1-2", "bytes=x-y", "bytes=9-2"):
        whole = httpx.get(url, headers={"Range": odd})
        assert (whole.status_code, whole.content) == (200, PNG), odd
    head = httpx.head(url)
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(size))
    assert head.headers["content-type"] == "image/png"
    bucket.remove([name])
