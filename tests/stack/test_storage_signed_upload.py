"""Signed upload URLs on the local stack, through the plain supabase-py client and raw
HTTP: made by admins only, good for one upload of one object, within their lifetime."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions

from carbook_sdk import (
    AccessDeniedError,
    Carbook,
    ConflictError,
    Money,
    NewCar,
    NotAuthenticatedError,
    SignedUpload,
    ValidationError,
)
from carbook_stack.manager import LocalStack
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PNG, carbook_for, supabase_client, unique_email

from ..helpers import stack_db

BUCKET = "car-images"
UPSERT = CreateSignedUploadUrlOptions(upsert="true")


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Any:
    """One signed-in admin for the module: signing in costs a bcrypt check."""
    client = supabase_client(stack.info().api_url, stack.info().anon_key)
    client.auth.sign_in_with_password({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    return client


def _state(stack: LocalStack) -> tuple[Any, ...]:
    """Every object row and every stored file: what an upload would change."""
    with stack_db(stack) as conn:
        rows = conn.execute("select bucket_id, name, version from storage.objects order by 1, 2").fetchall()
    files = sorted(p.name for p in (stack.settings.storage_dir / "objects").glob("*"))
    return rows, files


def _row(stack: LocalStack, name: str) -> tuple[Any, ...] | None:
    with stack_db(stack) as conn:
        return conn.execute(
            "select owner::text, owner_id, metadata->>'mimetype' from storage.objects"
            " where bucket_id = %s and name = %s",
            (BUCKET, name),
        ).fetchone()


def _name() -> str:
    return f"signed/{uuid.uuid4().hex}.png"


def test_signed_upload_url_then_upload_to_it_without_signing_in(stack: LocalStack, admin: Any) -> None:
    name = _name()
    signed = admin.storage.from_(BUCKET).create_signed_upload_url(name)
    assert signed["path"] == name and signed["token"]
    assert signed["signed_url"].startswith(
        f"{stack.info().storage_url}/object/upload/sign/{BUCKET}/{name}?token="
    )
    # Anyone with the token uploads: here a client that never signed in (anon key only).
    anon = supabase_client(stack.info().api_url, stack.info().anon_key)
    reply = anon.storage.from_(BUCKET).upload_to_signed_url(
        name, signed["token"], PNG, {"content-type": "image/png"}
    )
    assert reply.full_path == f"{BUCKET}/{name}"
    got = httpx.get(admin.storage.from_(BUCKET).get_public_url(name))
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, PNG, "image/png")
    # The row is the signer's, as if the admin had uploaded it.
    admin_id = admin.auth.get_session().user.id
    assert _row(stack, name) == (admin_id, admin_id, "image/png")


def test_the_signed_url_takes_a_plain_put_with_no_key_at_all(stack: LocalStack, admin: Any) -> None:
    """What a browser does with the URL: PUT the file to it, no apikey, no Authorization."""
    name = _name()
    url = admin.storage.from_(BUCKET).create_signed_upload_url(name)["signed_url"]
    put = httpx.put(url, files={"file": ("car.png", PNG, "image/png")})
    assert (put.status_code, put.json()) == (200, {"Key": f"{BUCKET}/{name}"})
    assert httpx.get(admin.storage.from_(BUCKET).get_public_url(name)).content == PNG


def test_a_used_token_is_refused_and_writes_nothing(stack: LocalStack, admin: Any) -> None:
    name = _name()
    bucket = admin.storage.from_(BUCKET)
    # With upsert, a second upload would replace the object: only one use stops it.
    token = bucket.create_signed_upload_url(name, UPSERT)["token"]
    bucket.upload_to_signed_url(name, token, PNG, {"content-type": "image/png"})
    before = _state(stack)
    with pytest.raises(StorageApiError) as again:
        bucket.upload_to_signed_url(name, token, PNG + b"second", {"content-type": "image/png"})
    assert (again.value.status, again.value.code) == ("400", "InvalidSignature")
    assert "already been used" in again.value.message
    assert _state(stack) == before
    assert bucket.download(name) == PNG


def test_racing_uploads_with_one_token_exactly_one_wins(stack: LocalStack, admin: Any) -> None:
    name = _name()
    url = admin.storage.from_(BUCKET).create_signed_upload_url(name, UPSERT)["signed_url"]
    bodies = [PNG + bytes([i]) * 1000 for i in range(8)]

    def put(body: bytes) -> int:
        return httpx.put(url, files={"file": ("car.png", body, "image/png")}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(put, bodies))
    assert sorted(statuses) == [200] + [400] * 7, statuses
    stored = admin.storage.from_(BUCKET).download(name)
    assert stored in bodies
    with stack_db(stack) as conn:
        versions = {r[0] for r in conn.execute("select version from storage.objects")}
    files = {p.name for p in (stack.settings.storage_dir / "objects").iterdir() if not p.name.startswith(".")}
    assert files == versions  # the losers' bytes are gone


def test_an_expired_token_is_refused_and_writes_nothing(stack: LocalStack, admin: Any) -> None:
    """A real URL lives two hours: this token is minted by the stack's own signing code,
    as the admin, with a lifetime already over."""
    from carbook_stack.storage.signing import sign_upload_token
    from carbook_stack.tokens import verify_token

    name = _name()
    signer = verify_token(admin.auth.get_session().access_token, stack.settings.keys())
    token = sign_upload_token(
        stack.settings.jwt_secret, bucket_id=BUCKET, name=name, signer=signer, upsert=False, expires_in=-5
    )
    before = _state(stack)
    with pytest.raises(StorageApiError) as expired:
        admin.storage.from_(BUCKET).upload_to_signed_url(name, token, PNG, {"content-type": "image/png"})
    assert (expired.value.status, expired.value.code) == ("400", "ExpiredToken")
    assert expired.value.message == "The provided token has expired."
    assert _state(stack) == before
    # The same code with a lifetime left works: the refusal was the expiry, nothing else.
    fresh = sign_upload_token(
        stack.settings.jwt_secret, bucket_id=BUCKET, name=name, signer=signer, upsert=False, expires_in=60
    )
    admin.storage.from_(BUCKET).upload_to_signed_url(name, fresh, PNG, {"content-type": "image/png"})
    assert _row(stack, name) is not None


def test_a_token_is_good_for_its_own_bucket_and_path_only(stack: LocalStack, admin: Any) -> None:
    name = _name()
    bucket = admin.storage.from_(BUCKET)
    token = bucket.create_signed_upload_url(name)["token"]
    existing = _name()
    bucket.upload(existing, PNG, {"content-type": "image/png"})
    download_token = bucket.create_signed_url(existing, 60)
    before = _state(stack)
    for bucket_id, path, tok in [
        (BUCKET, _name(), token),  # another path
        ("avatars", name, token),  # another bucket
        (BUCKET, name, token[:-2] + ("AA" if not token.endswith("AA") else "BB")),  # forged
        (BUCKET, name, download_token["signedURL"].split("token=")[1]),  # a download token
    ]:
        with pytest.raises(StorageApiError) as refused:
            admin.storage.from_(bucket_id).upload_to_signed_url(path, tok, PNG, {"content-type": "image/png"})
        assert refused.value.status == "400"
        assert refused.value.code in ("InvalidSignature", "InvalidJWT"), refused.value.code
    assert _state(stack) == before
    bucket.upload_to_signed_url(name, token, PNG, {"content-type": "image/png"})  # still unspent


def test_only_admins_get_a_signed_upload_url(stack: LocalStack) -> None:
    info = stack.info()
    user = supabase_client(info.api_url, info.anon_key)
    user.auth.sign_up({"email": unique_email(), "password": "correct-horse-9"})
    anon = supabase_client(info.api_url, info.anon_key)
    for client in (user, anon):
        with pytest.raises(StorageApiError) as refused:
            client.storage.from_(BUCKET).create_signed_upload_url(_name())
        assert refused.value.status == "403"
        assert refused.value.message == "new row violates row-level security policy"


def test_signing_needs_an_api_key_but_the_upload_does_not(stack: LocalStack, admin: Any) -> None:
    info = stack.info()
    no_key = httpx.post(f"{info.storage_url}/object/upload/sign/{BUCKET}/{_name()}")
    assert (no_key.status_code, no_key.json()["message"]) == (401, "No API key found in request")
    token = admin.auth.get_session().access_token
    signed = httpx.post(
        f"{info.storage_url}/object/upload/sign/{BUCKET}/{_name()}",
        headers={"apikey": info.anon_key, "Authorization": f"Bearer {token}"},
    )
    assert signed.status_code == 200 and set(signed.json()) == {"url", "token"}
    assert signed.json()["url"].startswith(f"/object/upload/sign/{BUCKET}/signed/")


def test_signed_uploads_keep_the_bucket_limits_and_content_checks(stack: LocalStack, admin: Any) -> None:
    bucket = admin.storage.from_(BUCKET)
    before = _state(stack)
    cases = [
        (b"hello", "text/plain", ("415", "invalid_mime_type")),
        (b"not really a png", "image/png", ("415", "invalid_mime_type")),
        (PNG + b"\0" * (5 * 1024 * 1024), "image/png", ("413", "Payload too large")),
    ]
    for body, mime, expected in cases:
        name = _name()
        token = bucket.create_signed_upload_url(name)["token"]
        with pytest.raises(StorageApiError) as refused:
            bucket.upload_to_signed_url(name, token, body, {"content-type": mime})
        assert (refused.value.status, refused.value.code) == expected
        # A refused upload does not spend the token.
        bucket.upload_to_signed_url(name, token, PNG, {"content-type": "image/png"})
        bucket.remove([name])
    assert _state(stack) == before


def test_without_upsert_a_signed_url_never_replaces_an_object(stack: LocalStack, admin: Any) -> None:
    name = _name()
    bucket = admin.storage.from_(BUCKET)
    token = bucket.create_signed_upload_url(name)["token"]
    bucket.upload(name, PNG, {"content-type": "image/png"})  # someone got there first
    with pytest.raises(StorageApiError) as taken:
        bucket.upload_to_signed_url(name, token, PNG + b"x", {"content-type": "image/png"})
    assert taken.value.status == "409"
    assert bucket.download(name) == PNG
    with pytest.raises(StorageApiError) as exists:
        bucket.create_signed_upload_url(name)  # and signing one for a taken name says so now
    assert exists.value.status == "409"


# The SDK -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sdk_admin(stack: LocalStack) -> Iterator[Carbook]:
    with carbook_for(stack) as cb:
        cb.auth.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield cb


def _counts(stack: LocalStack) -> tuple[Any, ...]:
    """Cars, audit rows, object rows and stored files: what a car or an image changes."""
    with stack_db(stack) as conn:
        row = conn.execute(
            """select (select count(*) from public.cars), (select count(*) from public.audit_logs),
                      (select count(*) from storage.objects)"""
        ).fetchone()
    assert row is not None
    return (*row, _state(stack)[1])


def _new_car(**kw: Any) -> NewCar:
    return NewCar(**{"make": "Tata", "model": "Signed", "year": 2024, "price": Money.of("1499", "INR"), **kw})


def test_sdk_signed_upload_then_a_car_with_that_image(stack: LocalStack, sdk_admin: Carbook) -> None:
    name = f"cars/{uuid.uuid4().hex}.png"
    signed = sdk_admin.images.create_signed_upload(name)
    assert isinstance(signed, SignedUpload) and signed.path == name
    assert signed.url.startswith(
        f"{stack.info().api_url}/storage/v1/object/upload/sign/{BUCKET}/{name}?token="
    )
    assert signed.url.endswith(signed.token)
    # A browser's PUT: the absolute URL and the file, nothing else.
    assert httpx.put(signed.url, files={"file": ("car.png", PNG, "image/png")}).status_code == 200
    car = sdk_admin.cars.create(_new_car(), image_path=signed.path)
    assert car.image_path == name and car.image_url == sdk_admin.images.public_url(name)
    assert httpx.get(car.image_url).content == PNG


def test_sdk_a_failed_insert_keeps_an_image_it_did_not_upload(stack: LocalStack, sdk_admin: Carbook) -> None:
    name = f"cars/{uuid.uuid4().hex}.png"
    sdk_admin.images.upload(PNG, name=name)
    ref = f"sig-{uuid.uuid4().hex[:8]}"
    sdk_admin.cars.create(_new_car(ref=ref), PNG)
    before = _counts(stack)
    with pytest.raises(ConflictError):
        sdk_admin.cars.create(_new_car(ref=ref), image_path=name)  # the ref is taken
    assert _counts(stack) == before and sdk_admin.images.exists(name)


def test_sdk_an_image_path_not_in_the_bucket_is_a_clear_error(stack: LocalStack, sdk_admin: Carbook) -> None:
    before = _counts(stack)
    with pytest.raises(ValidationError) as missing:
        sdk_admin.cars.create(_new_car(), image_path="cars/never-uploaded.png")
    assert str(missing.value).startswith("no image at 'cars/never-uploaded.png' in the bucket")
    with pytest.raises(ValidationError, match="one image"):
        sdk_admin.cars.create(_new_car(), PNG, image_path="cars/never-uploaded.png")
    with pytest.raises(ValidationError, match="one image"):
        sdk_admin.cars.create(_new_car())
    assert _counts(stack) == before


@pytest.mark.parametrize("name", ["../escape.png", "/abs.png", "cars//x.png", "a\nb.png", "50%.png", ""])
def test_sdk_bad_names_are_refused_before_anything_is_sent(
    stack: LocalStack, sdk_admin: Carbook, name: str
) -> None:
    before = _counts(stack)
    with pytest.raises(ValidationError) as bad:
        sdk_admin.images.create_signed_upload(name)
    assert str(bad.value) == f"not a valid image name: {name!r}" and "\n" not in str(bad.value)
    with pytest.raises(ValidationError):
        sdk_admin.cars.create(_new_car(), image_path=name)
    assert _counts(stack) == before


def test_sdk_only_admins_create_signed_uploads(stack: LocalStack) -> None:
    with carbook_for(stack) as user:
        with pytest.raises(NotAuthenticatedError):
            user.images.create_signed_upload("cars/x.png")
        user.auth.sign_up(unique_email(), "correct-horse-9")
        with pytest.raises(AccessDeniedError) as refused:
            user.images.create_signed_upload(f"cars/{uuid.uuid4().hex}.png")
    assert str(refused.value) == "creating a signed upload URL is for admins only"
