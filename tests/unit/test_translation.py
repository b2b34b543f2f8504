"""The translation table: every third-party exception type the SDK can meet, fed through
the clients' one request helper (``_call``) and the ops boundary, comes out as the
documented CarbookError.

The exceptions are raised by hand: these are the faults of other packages (a reply
shape, a dropped connection, a driver state) that the integration tests cause for real
where they can; here each row of the table is pinned one by one, with no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pydantic
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase._async.client import SupabaseException as AsyncSupabaseException
from supabase._sync.client import SupabaseException as SyncSupabaseException
from supabase_auth.errors import (
    AuthApiError,
    AuthInvalidJwtError,
    AuthRetryableError,
    AuthSessionMissingError,
    AuthUnknownError,
    AuthWeakPasswordError,
)

from carbook_sdk import AsyncCarbook, Carbook
from carbook_sdk.errors import (
    AccessDeniedError,
    AuthError,
    CarAlreadyBookedError,
    CarbookConnectionError,
    CarbookError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    ImageTooLargeError,
    InvalidCredentialsError,
    NotAuthenticatedError,
    NotFoundError,
    OutcomeUnknownError,
    SessionExpiredError,
    StorageError,
    UnsupportedImageTypeError,
    UserAlreadyExistsError,
    ValidationError,
    WeakPasswordError,
)

URL = "http://127.0.0.1:9"
REQUEST = httpx.Request("GET", URL)


def _pydantic_error() -> pydantic.ValidationError:
    class Reply(pydantic.BaseModel):
        id: int

    try:
        Reply.model_validate({"id": "x"})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _auth_retryable_from(cause: BaseException) -> AuthRetryableError:
    """What supabase-py's Auth raises for an httpx failure: ``raise handle_exception(e) from e``."""
    error = AuthRetryableError("", 0)
    error.__cause__ = cause
    return error


def _postgrest(code: str, message: str = "boom", details: str | None = None) -> APIError:
    return APIError({"code": code, "message": message, "hint": None, "details": details})


#: (third-party exception, the CarbookError class it must become, a piece of its message)
TABLE: list[tuple[BaseException, type[CarbookError], str]] = [
    # PostgREST (postgrest-py's APIError, SQLSTATE or PGRST code in `code`)
    (_postgrest("42501", "permission denied for table cars"), AccessDeniedError, "permission denied"),
    (
        _postgrest("23514", 'new row for relation "cars" violates check constraint "cars_year_range"'),
        ValidationError,
        "year must be between 1886 and 2100",
    ),
    (_postgrest("22P02", 'invalid input syntax for type uuid: "x"'), ValidationError, "not a valid uuid"),
    (_postgrest("23505", "duplicate key"), ConflictError, "that already exists"),
    (
        _postgrest(
            "23505",
            'duplicate key value violates unique constraint "cars_ref_key"',
            "Key (ref)=(fleet-001) already exists.",
        ),
        ConflictError,
        "a car with ref fleet-001 already exists",
    ),
    (
        _postgrest("23505", 'violates unique constraint "other_key"', "Key (email)=(a@b.c) already exists."),
        ConflictError,
        "email a@b.c is already taken",
    ),
    (
        _postgrest("23502", 'null value in column "make" of relation "cars" violates not-null constraint'),
        ValidationError,
        "make is required",
    ),
    (_postgrest("23503", 'violates foreign key constraint "cars_booked_by_fkey"'), NotAuthenticatedError, ""),
    (_postgrest("23503", "violates foreign key constraint"), ValidationError, ""),
    (_postgrest("PGRST301", "JWT expired"), SessionExpiredError, "access token was refused"),
    (_postgrest("PGRST116", "no rows"), NotFoundError, "no rows"),
    (_postgrest("PGRST000", "db down"), CarbookConnectionError, "REST service is unavailable"),
    # A key the gateway does not know: set-up, not the database (no code, a fixed message).
    (_postgrest("", "Invalid API key"), ConfigurationError, "the project refused the API key"),
    (_postgrest("", "No API key found in request"), ConfigurationError, "refused the API key"),
    (StorageApiError("Invalid API key", "Unauthorized", 401), ConfigurationError, "refused the API key"),
    (AuthApiError("Invalid API key", 401, None), ConfigurationError, "refused the API key"),
    (_postgrest("503", ""), CarbookConnectionError, "without an answer"),
    (_postgrest("XX000", "internal"), DatabaseError, "internal"),
    # Auth (supabase_auth)
    (AuthApiError("Invalid login credentials", 400, "invalid_credentials"), InvalidCredentialsError, ""),
    (AuthApiError("taken", 422, "user_already_exists"), UserAlreadyExistsError, "taken"),
    (AuthApiError("used", 400, "refresh_token_already_used"), SessionExpiredError, "used"),
    (AuthApiError("admins only", 403, "not_admin"), AccessDeniedError, "admins only"),
    (
        AuthApiError("Anonymous sign-ins are disabled", 422, "anonymous_provider_disabled"),
        AccessDeniedError,
        "Anonymous sign-ins are disabled (turn on [auth] enable_anonymous_sign_ins",
    ),
    (AuthApiError("who?", 401, None), NotAuthenticatedError, "who?"),
    (AuthApiError("odd", 418, None), AuthError, "odd"),
    (AuthSessionMissingError(), NotAuthenticatedError, "Sign in first"),
    (AuthWeakPasswordError("too short", 422, ["length"]), WeakPasswordError, "too short"),
    (AuthRetryableError("down", 503), CarbookConnectionError, "auth service is unreachable"),
    (AuthInvalidJwtError("bad token"), AuthError, "bad token"),
    (AuthUnknownError("garbled", ValueError("x")), AuthError, "garbled"),
    # Storage (storage3)
    (StorageApiError("too big", "Payload too large", 413), ImageTooLargeError, "too big"),
    (StorageApiError("not an image", "InvalidMimeType", "415"), UnsupportedImageTypeError, "not an image"),
    (StorageApiError("denied", "Unauthorized", 403), AccessDeniedError, "denied"),
    (StorageApiError("missing", "not_found", 404), NotFoundError, "missing"),
    (StorageApiError("exists", "Duplicate", 409), ConflictError, "exists"),
    (StorageApiError("who?", "Unauthorized", 401), NotAuthenticatedError, "who?"),
    (StorageApiError("bad", "InvalidRequest", 400), ValidationError, "bad"),
    (StorageApiError("oops", "internal", 500), StorageError, "oops"),
    (
        StorageApiError("The database is unavailable", "Service Unavailable", "503"),
        CarbookConnectionError,
        "",
    ),
    # httpx
    (httpx.ConnectError("refused", request=REQUEST), CarbookConnectionError, "could not connect"),
    (httpx.ReadTimeout("slow", request=REQUEST), OutcomeUnknownError, "timed out"),
    (httpx.ConnectTimeout("slow", request=REQUEST), CarbookConnectionError, "timed out"),
    (httpx.RemoteProtocolError("cut", request=REQUEST), OutcomeUnknownError, "could not connect"),
    # supabase-py's Auth wraps a timed-out reply with an empty message: the cause decides.
    (_auth_retryable_from(httpx.ReadTimeout("", request=REQUEST)), OutcomeUnknownError, "timed out waiting"),
    (_auth_retryable_from(httpx.ConnectError("refused", request=REQUEST)), CarbookConnectionError, "refused"),
    (httpx.DecodingError("garbled", request=REQUEST), CarbookConnectionError, "unreadable reply"),
    (httpx.TooManyRedirects("loop", request=REQUEST), CarbookConnectionError, "unreadable reply"),
    (
        httpx.HTTPStatusError("500", request=REQUEST, response=httpx.Response(500, request=REQUEST)),
        CarbookError,
        "HTTP 500",
    ),
    (httpx.InvalidURL("no host"), ConfigurationError, "not a valid project URL"),
    # pydantic (a reply that does not fit its model) and supabase-py's own checks
    (_pydantic_error(), ValidationError, "unexpected reply"),
    (AsyncSupabaseException("Invalid URL"), ConfigurationError, "Invalid URL"),
    (SyncSupabaseException("supabase_key is required"), ConfigurationError, "supabase_key is required"),
]


def _raiser(exc: BaseException) -> Callable[[], Any]:
    def fail() -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(("exc", "kind", "text"), TABLE, ids=lambda v: type(v).__name__)
def test_sync_boundary(exc: BaseException, kind: type[CarbookError], text: str) -> None:
    with Carbook(URL, "some-key") as cb, pytest.raises(kind) as info:
        cb._call(_raiser(exc))
    assert text in str(info.value)
    assert info.value.__cause__ is exc  # the original stays reachable for debugging


@pytest.mark.parametrize(("exc", "kind", "text"), TABLE, ids=lambda v: type(v).__name__)
def test_async_boundary(exc: BaseException, kind: type[CarbookError], text: str) -> None:
    async def fail() -> Any:
        raise exc

    async def go() -> None:
        async with AsyncCarbook(URL, "some-key") as cb:
            await cb._call(fail)

    with pytest.raises(kind) as info:
        asyncio.run(go())
    assert text in str(info.value)


def test_the_gateways_own_503_is_said_once() -> None:
    with Carbook(URL, "some-key") as cb, pytest.raises(CarbookConnectionError) as info:
        cb._call(_raiser(_postgrest("PGRST000", "The REST service is unavailable")))
    assert str(info.value) == "the REST service is unavailable"


def test_a_carbook_error_passes_through_untouched() -> None:
    mine = NotFoundError("mine")
    with Carbook(URL, "some-key") as cb, pytest.raises(NotFoundError) as info:
        cb._call(_raiser(mine))
    assert info.value is mine


def test_a_bug_of_ours_is_not_disguised() -> None:
    # Not a third-party error: it must surface as itself, not as a misleading CarbookError.
    with Carbook(URL, "some-key") as cb, pytest.raises(ZeroDivisionError):
        cb._call(_raiser(ZeroDivisionError("bug")))


def _diag_error(cls: type[psycopg.Error], message: str) -> psycopg.Error:
    return cls(message)


#: psycopg errors through the ops boundary (carbook_sdk.ops.translate).
DB_TABLE: list[tuple[psycopg.Error, type[CarbookError], str]] = [
    (
        psycopg.OperationalError("connection refused"),
        CarbookConnectionError,
        "Could not connect to PostgreSQL",
    ),
    (psycopg.errors.CheckViolation("violates check"), ValidationError, "violates check"),
    (psycopg.errors.UniqueViolation("duplicate key"), ConflictError, "that already exists"),
    (
        psycopg.errors.ForeignKeyViolation("violates fk"),
        ValidationError,
        "refers to a row that does not exist",
    ),
    (psycopg.errors.NotNullViolation("null value"), ValidationError, "null value"),
    (psycopg.errors.InsufficientPrivilege("permission denied"), AccessDeniedError, "permission denied"),
    (psycopg.errors.InvalidTextRepresentation("bad input"), ValidationError, "bad input"),
    (psycopg.errors.UndefinedTable("no such table"), DatabaseError, "no such table"),
]


@pytest.mark.parametrize(("exc", "kind", "text"), DB_TABLE, ids=lambda v: type(v).__name__)
def test_ops_boundary(exc: psycopg.Error, kind: type[CarbookError], text: str) -> None:
    from carbook_sdk.ops.translate import wrap_db_errors

    with pytest.raises(kind) as info, wrap_db_errors("postgresql://u:secret@h:5432/db"):
        raise exc
    assert text in str(info.value)
    assert "secret" not in str(info.value)


def test_every_exception_type_the_translator_names_has_a_row() -> None:
    # A new branch in the translator without a row here would go untested.
    import inspect

    from carbook_sdk import _translate

    source = inspect.getsource(_translate.translate) + inspect.getsource(_translate._network_error)
    for name in ("APIError", "SupabaseAuthError", "StorageApiError", "TimeoutException", "TransportError"):
        assert name in source
    covered = {type(e) for e, _, _ in TABLE}
    for base in (
        APIError,
        StorageApiError,
        httpx.TimeoutException,
        httpx.TransportError,
        pydantic.ValidationError,
    ):
        assert any(issubclass(t, base) for t in covered), base


def test_an_unknown_outcome_is_not_a_plain_connection_error() -> None:
    # Only what never left is retryable as it is; a sent request's fate is unknown.
    with Carbook(URL, "some-key") as cb:
        for exc, kind, retryable in (
            (httpx.ReadTimeout("", request=REQUEST), OutcomeUnknownError, False),
            (httpx.ConnectError("refused", request=REQUEST), CarbookConnectionError, True),
        ):
            with pytest.raises(kind) as info:
                cb._call(_raiser(exc))
            assert (type(info.value), info.value.retryable) == (kind, retryable)
            assert info.value.status in (503, 504)


def test_every_error_says_its_http_status_and_whether_to_retry() -> None:
    from carbook_sdk import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        exc = cls()
        assert isinstance(exc.status, int) and 400 <= exc.status <= 599, name
        assert isinstance(exc.retryable, bool), name
        assert {"status", "retryable"} <= set(exc.to_dict()), name
    assert errors.CarAlreadyBookedError().status == 409
    assert errors.BookingNotYoursError().status == 403
    assert errors.ValidationError(status=418).status == 418  # the server's own wins


def test_not_authenticated_keeps_the_booking_functions_reason() -> None:
    from carbook_sdk._base import booking_from_result

    reply = {
        "success": False,
        "code": "not_authenticated",
        "car_id": "c",
        "booked_by": None,
        "booked_at": None,
    }
    anonymous = {**reply, "message": "Sign in with an account to book a car."}
    with pytest.raises(NotAuthenticatedError, match=r"^Sign in with an account to book a car\.$"):
        booking_from_result(anonymous, "c")
    with pytest.raises(NotAuthenticatedError, match=r"^Sign in first\.$"):
        booking_from_result(reply, "c")
    # The code chooses the exception, never the message.
    with pytest.raises(CarAlreadyBookedError, match="Be fast next time"):
        booking_from_result({**reply, "code": "already_booked", "message": "whatever"}, "c")
