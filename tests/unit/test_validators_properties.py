"""Property tests: every input validator either accepts a value it can round-trip or
raises a carbook ValidationError, whatever it is given."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbook_sdk import Money, NewCar, ValidationError
from carbook_sdk._base import (
    check_email,
    check_limit,
    decode_cursor,
    encode_cursor,
    image_name,
    load_image,
)
from carbook_sdk.models import Car, parse_car_id, validated

anything = st.one_of(st.text(), st.binary(), st.integers(), st.floats(), st.none(), st.booleans())


@given(st.one_of(st.text(), st.uuids().map(str), st.uuids()))
def test_parse_car_id(value: Any) -> None:
    try:
        parsed = parse_car_id(value)
    except ValidationError as exc:
        assert "not a valid car id" in str(exc)
    else:
        assert parsed == uuid.UUID(str(value))


@given(st.one_of(st.emails(), st.text(), anything))
def test_check_email(value: Any) -> None:
    try:
        email = check_email(value)
    except ValidationError:
        return
    assert "@" in email and email == email.strip()


@given(st.text(max_size=600))
def test_image_name(name: str) -> None:
    from carbook_sdk._base import ImageFile

    img = ImageFile(data=b"x", mime="image/png", extension="png")
    try:
        result = image_name(img, name)
    except ValidationError:
        return
    assert result == name and ".." not in name.split("/") and not name.startswith("/")


@given(st.text())
def test_decode_cursor(text: str) -> None:
    try:
        created, car_id = decode_cursor(text)
    except ValidationError as exc:
        assert "not a valid page cursor" in str(exc)
    else:
        assert uuid.UUID(car_id) and created


@settings(max_examples=50)
@given(st.datetimes(timezones=st.just(__import__("datetime").UTC)), st.uuids())
def test_cursor_round_trip(created: Any, car_id: uuid.UUID) -> None:
    car = Car(
        id=car_id, make="a", model="b", year=2020, is_published=True, created_at=created, updated_at=created
    )
    assert decode_cursor(encode_cursor(car)) == (created.isoformat(), str(car_id))
    oldest_first = encode_cursor(car, ascending=True)
    assert decode_cursor(oldest_first, ascending=True) == (created.isoformat(), str(car_id))
    # A cursor keeps its order: the other listing refuses it rather than page the wrong way.
    for cursor, ascending in ((oldest_first, False), (encode_cursor(car), True)):
        try:
            decode_cursor(cursor, ascending=ascending)
        except ValidationError:
            continue
        raise AssertionError(f"{cursor!r} decoded for ascending={ascending}")


@given(st.binary(max_size=64))
def test_load_image(data: bytes) -> None:
    try:
        img = load_image(data, max_bytes=32, allowed=("image/png", "image/jpeg", "image/webp"))
    except ValidationError:
        return
    assert img.data == data and 0 < len(data) <= 32


@given(anything)
def test_check_limit(value: Any) -> None:
    try:
        limit = check_limit(value)
    except ValidationError as exc:
        assert "limit must be an integer from 1 to 1000" in str(exc)
    else:
        assert limit == value and 1 <= limit <= 1000


@given(
    make=anything,
    model=anything,
    year=st.one_of(st.integers(), anything),
    amount=st.one_of(st.decimals(allow_nan=True), st.integers(), st.text()),
    currency=st.one_of(st.sampled_from(["INR", "JPY", "KWD", "inr", "XYZ"]), st.text(max_size=4)),
)
def test_new_car(make: Any, model: Any, year: Any, amount: Any, currency: Any) -> None:
    try:
        car = validated(NewCar, make=make, model=model, year=year, price=Money.of(amount, currency))
    except ValidationError:
        return
    row = car.row()
    assert row["price_in_paise"] >= 0 and isinstance(row["price_in_paise"], int)
    assert 1886 <= row["year"] <= 2100 and 1 <= len(row["make"]) <= 100


@given(anything)
def test_check_password_and_offset(value: Any) -> None:
    from carbook_sdk._base import check_offset, check_password

    try:
        assert check_password(value) == value and isinstance(value, str) and value
    except ValidationError:
        assert not (isinstance(value, str) and value)
    try:
        assert check_offset(value) == value and value >= 0
    except ValidationError:
        assert isinstance(value, bool) or not isinstance(value, int) or value < 0


_car_fields = st.fixed_dictionaries(
    {},
    optional={
        "make": st.one_of(st.text(max_size=120), st.none(), st.integers()),
        "model": st.one_of(st.text(max_size=120), st.none()),
        "year": st.one_of(st.integers(1800, 2200), st.none(), st.text(max_size=5)),
        "is_published": st.one_of(st.booleans(), st.none(), st.text(max_size=3)),
        "colour": st.text(max_size=5),
    },
)


@given(_car_fields)
def test_car_update(changes: dict[str, Any]) -> None:
    """A change set either becomes a row with no NULL in it, or a ValidationError."""
    from carbook_sdk.models import CarUpdate

    try:
        row = validated(CarUpdate, changes).row()
    except ValidationError:
        return
    assert row and None not in row.values()
    assert set(row) <= {"make", "model", "year", "is_published"}
    if "year" in row:
        assert 1886 <= row["year"] <= 2100


@given(st.text(max_size=300))
def test_storage_object_names(name: str) -> None:
    """No accepted name can address anything outside its bucket or smuggle a control byte."""
    from carbook_stack.storage import StorageError, check_name

    try:
        accepted = check_name(name)
    except StorageError:
        return
    segments = accepted.split("/")
    assert not accepted.startswith("/") and ".." not in segments and "" not in segments
    assert all(ord(c) >= 32 and ord(c) != 127 for c in accepted)
    assert len(accepted.encode()) <= 1024


@given(st.one_of(st.integers(0, 10**6).map(lambda n: f"{n}MiB"), st.text(max_size=12)))
def test_parse_size(value: str) -> None:
    from carbook_sdk.config import parse_size
    from carbook_sdk.errors import ConfigurationError

    try:
        size = parse_size(value)
    except ConfigurationError as exc:
        assert "not a size" in str(exc)
        return
    assert isinstance(size, int) and size >= 0
    if value.endswith("MiB") and value[:-3].isdigit():
        assert size == int(value[:-3]) * 1024 * 1024


@given(st.one_of(st.emails(), st.text(max_size=300), anything))
def test_gateway_auth_email_and_password_checks(value: Any) -> None:
    from carbook_stack.auth import AuthError, check_email

    try:
        email = check_email(value)
    except AuthError as exc:
        assert exc.status in (400, 422)
        return
    assert email == email.strip().lower() and email.count("@") >= 1 and len(email) <= 255


@pytest.mark.parametrize("value", ["\u00b2MiB", "\u0665MiB", "5\u00a0MiB\u0000", "1e3MiB", "-1MiB"])
def test_parse_size_takes_ascii_digits_only(value: str) -> None:
    from carbook_sdk.config import parse_size
    from carbook_sdk.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not a size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
        (b"\x00\x00\x00\x18ftypheic", "image/heic"),
        (b"BM\x00\x00", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"\x00\x00\x01\x00\x01\x00", "image/x-icon"),
        (b'\xef\xbb\xbf<?xml version="1.0"?>', "image/svg+xml"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    ],
)
def test_every_type_a_bucket_may_allow_is_known_by_its_content(head: bytes, mime: str) -> None:
    from carbook_sdk.media import detect_image_type

    assert detect_image_type(head, (mime,))[0] == mime  # type: ignore[index]
    assert detect_image_type(b"plain text", (mime,)) is None


def test_an_icon_has_two_names_and_the_allowed_one_is_taken() -> None:
    from carbook_sdk.media import detect_image_type

    icon = b"\x00\x00\x01\x00\x01\x00"
    assert detect_image_type(icon, ("image/vnd.microsoft.icon",)) == ("image/vnd.microsoft.icon", "ico")
    assert detect_image_type(icon) == ("image/x-icon", "ico")
