"""A rolled-back (or never migrated) schema is one clear error for the SDK calls and CLI
commands that need carbook's objects: never a raw "does not exist"."""

from __future__ import annotations

import pytest
from postgrest.exceptions import APIError

from carbook_sdk import NotMigratedError
from carbook_sdk._translate import translate
from carbook_sdk.errors import DatabaseError, ValidationError


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("42703", "column cars.booking_status does not exist", NotMigratedError),
        ("42883", "function public.book_car_atomic(car_id => uuid) does not exist", NotMigratedError),
        (
            "PGRST202",
            "Could not find the function public.book_car_atomic(car_id) in the schema cache",
            NotMigratedError,
        ),
        (
            "PGRST204",
            "Could not find the 'price_in_paise' column of 'cars' in the schema cache",
            NotMigratedError,
        ),
        ("42P01", 'relation "public.cars" does not exist', NotMigratedError),
        # Not carbook's own objects: a bug to report, not a schema to migrate.
        ("42703", "column cars.colour does not exist", DatabaseError),
        ("42883", "operator does not exist: uuid = text", DatabaseError),
        ("PGRST204", "Could not find the 'colour' column of 'cars' in the schema cache", ValidationError),
    ],
)
def test_what_counts_as_not_migrated(code: str, message: str, expected: type[Exception]) -> None:
    err = translate(APIError({"code": code, "message": message, "hint": None, "details": None}))
    assert type(err) is expected
    if expected is NotMigratedError:
        assert str(err) == "The database is not migrated: run `carbook db migrate`."
