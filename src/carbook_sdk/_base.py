"""What the sync and async clients share: validation, queries, parsing. No I/O here."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ._translate import booking_error
from .errors import (
    BookingError,
    ImageTooLargeError,
    UnsupportedImageTypeError,
    ValidationError,
)
from .media import detect_image_type
from .models import Booking, BookingEnded, Car, Page, validated

__all__ = [
    "ImageFile",
    "booking_from_result",
    "decode_cursor",
    "decode_key_cursor",
    "encode_cursor",
    "encode_key_cursor",
    "ended_from_result",
    "id_prefix",
    "load_image",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PAGE = 1000
#: Named, never ``*``: on a rolled-back schema a missing column is an error
#: (NotMigratedError), not a row the model fills with made-up defaults.
CAR_COLUMNS = (
    "id,make,model,year,image_path,is_published,booking_status,booked_by,booked_at,"
    "price_in_paise,currency,ref,created_at,updated_at"
)


@dataclass(frozen=True)
class ImageFile:
    """An image that passed validation: its bytes, type (by magic bytes) and extension."""

    data: bytes
    mime: str
    extension: str

    @property
    def size(self) -> int:
        return len(self.data)


def load_image(image: Path | str | bytes, *, max_bytes: int, allowed: tuple[str, ...]) -> ImageFile:
    """Read and validate an image before anything is sent.

    Raises:
        ValidationError: the file is missing or empty.
        ImageTooLargeError: larger than ``max_bytes``.
        UnsupportedImageTypeError: its bytes are not a JPEG, PNG or WebP (or not allowed).
    """
    label = "image"
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
    elif isinstance(image, str | Path):
        path = Path(image)
        label = str(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ValidationError(f"cannot read image {path}: {exc.strerror or exc}") from None
        if not path.is_file():
            raise ValidationError(f"cannot read image {path}: not a file")
        if size > max_bytes:
            raise ImageTooLargeError(f"{path} is {size:,} bytes; the limit is {max_bytes:,}")
        data = path.read_bytes()
    else:
        raise ValidationError(f"image must be a path or bytes, not {type(image).__name__}")
    if not data:
        raise ValidationError(f"{label} is empty")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{label} is {len(data):,} bytes; the limit is {max_bytes:,}")
    found = detect_image_type(data, allowed)
    if found is None or found[0] not in allowed:
        kinds = ", ".join(m.split("/")[1].upper() for m in allowed)
        raise UnsupportedImageTypeError(f"{label} is not a {kinds} image (checked by its content)")
    return ImageFile(data=data, mime=found[0], extension=found[1])


def image_name(image: ImageFile, name: str | None) -> str:
    """Where in the bucket an image goes: ``cars/<uuid>.<ext>`` unless a safe name is given."""
    if name is None:
        return f"cars/{uuid.uuid4()}.{image.extension}"
    return check_image_name(name)


def check_image_name(name: Any) -> str:
    """An image's name in the bucket, if it is one Storage and supabase-py take as itself.

    Raises:
        ValidationError: not such a name.
    """
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 512
        or name.startswith("/")
        or any(seg in ("", ".", "..") for seg in name.split("/"))
        or any(ord(c) < 32 for c in name)
        # supabase-py percent-decodes object paths: '%' would not mean itself.
        or "%" in name
        or "\\" in name
    ):
        raise ValidationError(f"not a valid image name: {name!r}")
    return name


def check_email(email: Any) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        raise ValidationError(f"not a valid email address: {email!r}")
    return email.strip()


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not password:
        raise ValidationError("a password is required")
    return password


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
    return limit


def check_offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be a non-negative integer, not {offset!r}")
    return offset


#: The tag of a cursor for the oldest-first listing (``list_all``): a cursor keeps the
#: order it was made for, so one listing's cursor is refused by the other instead of
#: silently paging the wrong way. Newest-first cursors (``list_available``) have none.
ASCENDING = "asc"


def encode_cursor(car: Car, *, ascending: bool = False) -> str:
    key = [car.created_at.isoformat(), str(car.id)]
    raw = json.dumps([*key, ASCENDING] if ascending else key).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, ascending: bool = False) -> tuple[str, str]:
    """(created_at, id) of the last car of the previous page.

    Raises:
        ValidationError: not a cursor this SDK made for this order.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or (parts[2:] != [ASCENDING] if ascending else len(parts) != 2):
            raise ValueError("not this order's cursor")
        created_at, car_id = parts[:2]
        datetime.fromisoformat(created_at)
        uuid.UUID(car_id)
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError(f"not a valid page cursor: {cursor!r}") from None
    return str(created_at), str(car_id)


def keyset_filter(cursor: str) -> str:
    """PostgREST ``or`` filter for the page after ``cursor`` (created_at desc, id asc)."""
    created_at, car_id = decode_cursor(cursor)
    return f'created_at.lt."{created_at}",and(created_at.eq."{created_at}",id.gt.{car_id})'


def keyset_filter_ascending(cursor: str) -> str:
    """PostgREST ``or`` filter for the page after ``cursor`` (created_at asc, id asc)."""
    created_at, car_id = decode_cursor(cursor, ascending=True)
    return f'created_at.gt."{created_at}",and(created_at.eq."{created_at}",id.gt.{car_id})'


def cars_page(
    rows: list[dict[str, Any]], limit: int, public_url: Any, *, keyset: bool, ascending: bool = False
) -> Page[Car]:
    cars = [parse_car(r, public_url) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = encode_cursor(cars[-1], ascending=ascending) if more and keyset and cars else None
    return Page(items=cars, next_cursor=cursor)


def parse_car(row: dict[str, Any], public_url: Any) -> Car:
    car = validated(Car, row)
    if car.image_path:
        car = car.model_copy(update={"image_url": public_url(car.image_path)})
    return car


def booking_from_result(result: Any, car_id: str) -> Booking:
    """A Booking for a successful ``book_car_atomic`` reply, else the outcome's exception."""
    if not isinstance(result, dict) or "code" not in result:
        raise BookingError(f"unexpected reply from book_car_atomic: {result!r}", car_id=car_id)
    if result.get("success"):
        return validated(Booking, result)
    message = result.get("message")
    raise booking_error(str(result["code"]), car_id, message if isinstance(message, str) else None)


def ended_from_result(result: Any, car_id: str) -> BookingEnded:
    """A BookingEnded for a successful ``release_car``/``cancel_booking`` reply, else the
    outcome's exception (chosen by its code, as for booking)."""
    if not isinstance(result, dict) or "code" not in result:
        raise BookingError(f"unexpected reply from the database: {result!r}", car_id=car_id)
    if result.get("success"):
        return validated(BookingEnded, result)
    message = result.get("message")
    raise booking_error(str(result["code"]), car_id, message if isinstance(message, str) else None)


#: The fewest hex characters of an id a person may type for it, as tables show them.
MIN_PREFIX = 8
_HEX = re.compile(r"^[0-9a-f]+$")


def id_prefix(value: Any, what: str = "car id") -> uuid.UUID | tuple[str, str]:
    """A whole id as a UUID, or a prefix of one as the (lowest, highest) ids it covers.

    Dashes are optional (``64ecc8c5``, ``10000000-0000-4000-8000-00000000000``); at least
    ``MIN_PREFIX`` hex characters.

    Raises:
        ValidationError: neither (nothing is sent).
    """
    if isinstance(value, uuid.UUID):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else ""
    digits = text.replace("-", "")
    if not _HEX.match(digits) or len(digits) > 32 or (len(digits) == 32 and not _is_uuid(text)):
        raise ValidationError(
            f"not a valid {what}: {value!r} (expected a UUID or at least {MIN_PREFIX} of its first characters)"
        )
    if len(digits) == 32:
        return uuid.UUID(digits)
    if len(digits) < MIN_PREFIX:
        raise ValidationError(
            f"{what} {value!r} is too short: give at least {MIN_PREFIX} characters, as tables show them"
        )
    low, high = (uuid.UUID(digits.ljust(32, fill)) for fill in "0f")
    return str(low), str(high)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def encode_key_cursor(*key: Any) -> str:
    """A cursor for a keyset over any columns (the audit trail, the bookings list)."""
    raw = json.dumps([str(k) for k in key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key_cursor(cursor: Any, size: int) -> list[str]:
    """The key ``encode_key_cursor`` packed, of ``size`` parts.

    Raises:
        ValidationError: not a cursor of this listing.
    """
    try:
        raw = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
            raise ValueError("not this listing's cursor")
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError(f"not a valid page cursor: {cursor!r}") from None
    return parts
