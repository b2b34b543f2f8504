"""Typed models for every row and result (pydantic, ``extra="ignore"`` for replies)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ValidationError
from .money import Money

__all__ = [
    "AdminBooking",
    "AuditEntry",
    "Booking",
    "BookingEnded",
    "BookingStatus",
    "Car",
    "CarDeletion",
    "CarUpdate",
    "CarUpdateFields",
    "NewCar",
    "Page",
    "SignedUpload",
    "SortOrder",
    "User",
    "UserIdentity",
    "parse_car_id",
    "validated",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

BookingStatus = Literal["available", "booked"]
#: The order of a listing by time: ``newest`` first or ``oldest`` first.
SortOrder = Literal["newest", "oldest"]


def parse_car_id(value: Any, what: str = "car id") -> uuid.UUID:
    """A car id (or the ``what`` named) as a UUID, or a clear error before any network call.

    Raises:
        ValidationError: not a UUID.
    """
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(f"not a valid {what} (expected a UUID): {value!r}") from None


def validated(model: type[M], data: Any = None, /, **values: Any) -> M:
    """Build ``model``, turning pydantic's errors into one carbook ValidationError, field by field.

    The message is for people: no model name, no pydantic wording ("Value error, …"), and
    the same words for a rule the database also checks as its constraint's message."""
    reply = issubclass(model, _Reply)
    if data is not None and not isinstance(data, Mapping):
        what = "the reply" if reply else "the fields"
        raise ValidationError(f"{what} must be an object (a mapping), not {type(data).__name__}")
    try:
        return model.model_validate({**(data or {}), **values})
    except pydantic.ValidationError as exc:
        problems = "; ".join(_problem(model, e) for e in exc.errors())
        raise ValidationError(f"unexpected reply: {problems}" if reply else problems) from None


# A field whose rule is also a constraint of the schema: the one message for both.
_FIELD_CONSTRAINTS = {"year": "cars_year_range", "ref": "cars_ref_format"}


def _problem(model: type[BaseModel], e: Any) -> str:
    from ._translate import constraint_message

    field = ".".join(str(p) for p in e["loc"]) or "value"
    kind = e["type"]
    if kind == "value_error":  # our own validators, which name the field themselves
        message = str(e.get("ctx", {}).get("error", e["msg"]))
        return message if message.startswith(field) else f"{field}: {message}"
    if kind == "extra_forbidden":
        return f"{field} is not a field that can be set"
    if kind == "missing":
        return f"{field} is required"
    known = constraint_message(_FIELD_CONSTRAINTS.get(field)) if model in (NewCar, CarUpdate) else None
    if known and kind in {"greater_than_equal", "less_than_equal", "string_pattern_mismatch"}:
        return known
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"{field} must be a whole number"
    if kind in {"bool_type", "bool_parsing"}:
        return f"{field} must be true or false"
    if kind == "string_type":
        return f"{field} must be text"
    return f"{field}: {e['msg']}"


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserIdentity(_Reply):
    """One way a user signs in (``auth.identities``), as Supabase Auth returns it."""

    #: The identity row's own id.
    identity_id: uuid.UUID
    #: The user's id at the provider (for ``email``, the user's own id).
    id: str
    user_id: uuid.UUID
    #: ``email``, or an OAuth provider's name.
    provider: str
    identity_data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    last_sign_in_at: datetime | None = None
    updated_at: datetime | None = None


class User(_Reply):
    """A signed-in or managed user."""

    id: uuid.UUID
    email: str | None = None
    created_at: datetime | None = None
    last_sign_in_at: datetime | None = None
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    #: Signed in with ``auth.sign_in_anonymously()``: no email, no identity, cannot book.
    is_anonymous: bool = False
    identities: tuple[UserIdentity, ...] = ()


class Claims(_Reply):
    """The verified claims of the signed-in user's access token (``auth.claims()``)."""

    sub: uuid.UUID
    role: str
    exp: datetime
    iat: datetime | None = None
    iss: str | None = None
    aud: str | list[str] | None = None
    email: str | None = None
    phone: str | None = None
    session_id: uuid.UUID | None = None
    is_anonymous: bool = False
    #: Authenticator assurance level (``aal1``, ``aal2``) and how the user signed in.
    aal: str | None = None
    amr: list[dict[str, Any]] = Field(default_factory=list)
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    user_metadata: dict[str, Any] = Field(default_factory=dict)


class Car(_Reply):
    """A row of ``public.cars``."""

    id: uuid.UUID
    make: str
    model: str
    year: int
    image_path: str | None = None
    is_published: bool
    booking_status: BookingStatus = "available"
    booked_by: uuid.UUID | None = None
    booked_at: datetime | None = None
    price_in_paise: int = 0
    currency: str = "INR"
    #: The stable key of an imported car (`carbook cars import`), if any.
    ref: str | None = None
    created_at: datetime
    updated_at: datetime
    #: Public URL of the image, filled in by the SDK.
    image_url: str | None = None

    @property
    def price(self) -> Money:
        return Money.from_minor(self.price_in_paise, self.currency)

    @property
    def is_available(self) -> bool:
        return self.is_published and self.booking_status == "available"


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    text = value.strip()
    if not 1 <= len(text) <= 100:
        raise ValueError(f"{name} must be 1 to 100 characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise ValueError(f"{name} must not contain control characters")
    hidden = next((c for c in text if c in _INVISIBLE), None)
    if hidden is not None:
        # A direction override turns the rest of a table row around in a terminal, and a
        # zero-width space makes two names that look alike differ.
        raise ValueError(
            f"{name} must not contain invisible or direction-changing characters (U+{ord(hidden):04X})"
        )
    return text


#: Characters that show nothing themselves but change or hide what is around them: bidi
#: embeddings, overrides, isolates and marks; zero-width space, word joiner, BOM, soft
#: hyphen. The zero-width (non-)joiners are kept: emoji sequences and several scripts
#: need them.
_INVISIBLE = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff\u00ad"
)


class NewCar(BaseModel):
    """A car to create: ``NewCar(make="Tata", model="Nexon", year=2024, price=Money.of("1499", "INR"))``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    make: str
    model: str
    year: int = Field(ge=1886, le=2100)
    price: Money
    is_published: bool = False
    #: A stable key from an import file: 1-100 of letters, digits, ``. _ : -``.
    ref: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")

    @field_validator("make", "model", mode="before")
    @classmethod
    def _names(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        return _text(value, info.field_name or "value")

    @field_validator("price")
    @classmethod
    def _price(cls, value: Money) -> Money:
        if value.amount < 0:
            raise ValueError("price must not be negative")
        return value

    def row(self) -> dict[str, Any]:
        return {
            "make": self.make,
            "model": self.model,
            "year": self.year,
            "price_in_paise": self.price.minor_units,
            "currency": self.price.currency,
            "is_published": self.is_published,
            **({"ref": self.ref} if self.ref is not None else {}),
        }


class CarUpdate(BaseModel):
    """Changes to a car; only the fields given are changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    make: str | None = None
    model: str | None = None
    year: int | None = Field(default=None, ge=1886, le=2100)
    price: Money | None = None
    is_published: bool | None = None

    @field_validator("make", "model", mode="before")
    @classmethod
    def _names(cls, value: Any, info: pydantic.ValidationInfo) -> str | None:
        return None if value is None else _text(value, info.field_name or "value")

    @field_validator("price")
    @classmethod
    def _price(cls, value: Money | None) -> Money | None:
        if value is not None and value.amount < 0:
            raise ValueError("price must not be negative")
        return value

    def row(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True, exclude={"price"})
        cleared = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if cleared:
            raise ValidationError(f"{', '.join(cleared)} cannot be cleared: give a value or leave it out")
        if self.price is not None:
            changes["price_in_paise"] = self.price.minor_units
            changes["currency"] = self.price.currency
        if not changes:
            raise ValidationError("nothing to update: give at least one field")
        return changes


class CarUpdateFields(TypedDict, total=False):
    """The fields ``cars.update(car_id, **fields)`` takes, typed, so a type checker
    catches ``prise=`` or ``price="1499"`` before anything runs."""

    make: str
    model: str
    year: int
    price: Money
    is_published: bool


class Booking(_Reply):
    """A car booked by the caller (``code`` is ``booked`` or ``already_yours``)."""

    car_id: uuid.UUID
    booked_by: uuid.UUID
    booked_at: datetime
    code: Literal["booked", "already_yours"]
    message: str

    @property
    def already_yours(self) -> bool:
        return self.code == "already_yours"


class BookingEnded(_Reply):
    """A booking ended: ``released`` by an admin, or ``cancelled`` by its booker."""

    car_id: uuid.UUID
    #: Who had booked it (None when that user has been deleted since).
    booked_by: uuid.UUID | None = None
    booked_at: datetime
    ended_by: uuid.UUID
    ended_at: datetime
    reason: str | None = None
    code: Literal["released", "cancelled"]
    message: str


class AdminBooking(_Reply):
    """A booked car as admins see it: who booked it (their email) and when."""

    car_id: uuid.UUID
    make: str
    model: str
    year: int
    booked_by: uuid.UUID | None = None
    #: None when the booker's user has been deleted since.
    booker_email: str | None = None
    booked_at: datetime


class CarDeletion(_Reply):
    """A deleted car, and what became of its image (removed after the row was deleted)."""

    car: Car
    #: The image was removed from the bucket (or there was none to remove).
    image_removed: bool
    #: Why the image is still in the bucket (another car shows it, or the removal
    #: failed: remove ``car.image_path`` with ``images.delete``); None when removed.
    image_kept: str | None = None


class AuditEntry(_Reply):
    """A row of ``public.audit_logs``."""

    id: int
    actor_id: uuid.UUID | None = None
    action: str
    table_name: str
    record_id: uuid.UUID | None = None
    old_data: dict[str, Any] | None = None
    new_data: dict[str, Any] | None = None
    created_at: datetime


class SignedUpload(_Reply):
    """A signed upload URL for one image: whoever holds ``url`` can ``PUT`` that one image
    to ``path`` (once, within its lifetime; Supabase: two hours) without signing in."""

    #: Where the image goes in the bucket: pass it to ``cars.create(..., image_path=path)``.
    path: str
    #: Absolute, with the token in its query: a browser can ``PUT`` the file to it.
    url: str
    token: str


class Page(BaseModel, Generic[T]):
    """One page of results; ``next_cursor`` fetches the next one (None at the end)."""

    items: list[T]
    next_cursor: str | None = None
