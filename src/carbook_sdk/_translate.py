"""The one place where supabase-py, httpx and pydantic exceptions become carbook errors.

Each client reaches it through its one request helper (``AsyncCarbook._call``); nothing
else in the SDK catches a third-party exception. The booking function's outcomes map by
their ``code``, never by message text. psycopg errors are translated in ``ops/translate.py``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import (
    AccessDeniedError,
    AuthError,
    BookingError,
    BookingNotYoursError,
    CarAlreadyBookedError,
    CarbookConnectionError,
    CarbookError,
    CarNotBookedError,
    CarNotFoundError,
    CarNotPublishedError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    ImageTooLargeError,
    InvalidCredentialsError,
    NotAuthenticatedError,
    NotFoundError,
    NotMigratedError,
    OutcomeUnknownError,
    SessionExpiredError,
    StorageError,
    UnsupportedImageTypeError,
    UserAlreadyExistsError,
    ValidationError,
    WeakPasswordError,
)

__all__ = ["booking_error", "constraint_message", "translate", "unique_constraint", "unique_message"]

_BOOKING_ERRORS: dict[str, type[CarbookError]] = {
    "already_booked": CarAlreadyBookedError,
    "not_booked": CarNotBookedError,
    "not_yours": BookingNotYoursError,
    "invalid_reason": ValidationError,
    "not_found": CarNotFoundError,
    "not_published": CarNotPublishedError,
    "not_authenticated": NotAuthenticatedError,
}


def booking_error(code: str, car_id: str | None, message: str | None = None) -> CarbookError:
    """The exception for an unsuccessful ``book_car_atomic`` outcome, chosen by its code.

    ``message`` is the function's own: kept for ``not_authenticated``, whose reasons differ
    (no user, or an anonymous one), and never used to choose the exception."""
    kind = _BOOKING_ERRORS.get(code)
    if kind is None:
        return BookingError(f"unexpected booking outcome {code!r}", car_id=car_id)
    if issubclass(kind, BookingError):
        # The message is the class's own (CarAlreadyBookedError: "Already booked. Be fast next time.").
        return kind(car_id=car_id)
    return kind(message if code in ("not_authenticated", "invalid_reason") and message else None)


# Constraint names in the migrations → what a person should read instead.
_CONSTRAINT_MESSAGES: dict[str, str] = {
    "cars_price_non_negative": "price must not be negative",
    "cars_currency_iso4217": "currency must be an ISO 4217 code of three upper-case letters, like INR",
    "cars_booking_status_valid": "booking_status must be 'available' or 'booked'",
    "cars_booking_consistent": "booking fields are inconsistent: an available car has no booking",
    "cars_year_range": "year must be between 1886 and 2100",
    "cars_make_not_blank": "make must be 1 to 100 characters",
    "cars_model_not_blank": "model must be 1 to 100 characters",
    "user_roles_role_known": "role must be 'admin'",
    "cars_ref_format": "ref must be 1 to 100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
}

# Unique constraints and indexes → the message. PostgreSQL names the taken value in its
# detail only to a caller who may read the whole row, so there is a wording without it;
# the call that knows the value (``cars.create``: the ref) says it in full.
_UNIQUE_MESSAGES: dict[str, tuple[str, str]] = {
    "cars_ref_key": ("a car with ref {value} already exists", "a car with that ref already exists"),
    "cars_pkey": ("a car with id {value} already exists", "a car with that id already exists"),
    "user_roles_pkey": ("that user already has a role", "that user already has a role"),
}
_UNIQUE_CONSTRAINT = re.compile(r'violates unique constraint "([^"]+)"')
# PostgreSQL's detail of a unique violation: 'Key (ref)=(fleet-001) already exists.'
_TAKEN_KEY = re.compile(r"Key \((?P<columns>.*?)\)=\((?P<value>.*)\) already exists")
_NOT_NULL = re.compile(r'null value in column "([^"]+)"')

INVALID_TEXT = re.compile(r'invalid input syntax for type (\w+): "(.*)"')


def constraint_message(constraint: str | None) -> str | None:
    """The human message for a named constraint of the carbook schema, if known."""
    return _CONSTRAINT_MESSAGES.get(constraint or "")


def unique_constraint(message: str) -> str | None:
    """The unique constraint (or index) a 23505 names: PostgreSQL puts it only in the message."""
    m = _UNIQUE_CONSTRAINT.search(message)
    return m.group(1) if m else None


def unique_message(constraint: str | None, detail: str | None) -> str:
    """What a person reads for a unique violation: by the constraint's name when it is one
    of carbook's, else the taken value as PostgreSQL's detail names it — never the name."""
    taken = _TAKEN_KEY.search(detail or "")
    known = _UNIQUE_MESSAGES.get(constraint or "")
    if known is not None:
        return known[0].format(value=taken["value"]) if taken else known[1]
    if taken is not None:
        return f"{taken['columns']} {taken['value']} is already taken"
    return "that already exists"


# supabase-py and httpx ------------------------------------------------------------------
_AUTH_CODES: dict[str, type[CarbookError]] = {
    "invalid_credentials": InvalidCredentialsError,
    "user_already_exists": UserAlreadyExistsError,
    "email_exists": UserAlreadyExistsError,
    "weak_password": WeakPasswordError,
    "refresh_token_not_found": SessionExpiredError,
    "refresh_token_already_used": SessionExpiredError,
    "session_not_found": SessionExpiredError,
    "session_expired": SessionExpiredError,
    "bad_jwt": SessionExpiredError,
    # supabase-py's own verdict on a token it checked against the JWKS (get_claims).
    "invalid_jwt": SessionExpiredError,
    "no_authorization": NotAuthenticatedError,
    "email_not_confirmed": NotAuthenticatedError,
    "not_admin": AccessDeniedError,
    "user_not_found": NotFoundError,
    "validation_failed": ValidationError,
    "signup_disabled": AccessDeniedError,
    "anonymous_provider_disabled": AccessDeniedError,
}

# What to do next, for the auth refusals a setting of the project causes.
_AUTH_HINTS: dict[str, str] = {
    # GoTrue's answer to an admin call made without the secret key ("User not allowed").
    "not_admin": (
        "this needs the project's secret (or service_role) key: --secret-key, SUPABASE_SECRET_KEY"
        " or SUPABASE_SERVICE_ROLE_KEY; `carbook stack status` prints the local stack's"
    ),
    "anonymous_provider_disabled": (
        "turn on [auth] enable_anonymous_sign_ins in supabase/config.toml and restart the stack,"
        " or Anonymous Sign-Ins in the hosted project's Auth settings"
    ),
}

_STORAGE_STATUS: dict[str, type[CarbookError]] = {
    "400": ValidationError,
    "401": NotAuthenticatedError,
    "403": AccessDeniedError,
    "404": NotFoundError,
    "409": ConflictError,
    "413": ImageTooLargeError,
    "415": UnsupportedImageTypeError,
    # Storage up but its database not (or a proxy without an upstream): try again later.
    "502": CarbookConnectionError,
    "503": CarbookConnectionError,
    "504": CarbookConnectionError,
}

_CHECK_CONSTRAINT = re.compile(r'violates check constraint "([^"]+)"')

# What carbook's migrations create and its requests name: when PostgREST or PostgreSQL
# says one of these does not exist, the schema is not (or no longer) migrated. The
# missing object's name is only in the message, so it is read there — and only to tell
# carbook's own objects from anything else that does not exist (42883 is also "operator
# does not exist", a bug, not a schema to migrate).
_CARBOOK_TABLES = frozenset({"cars", "user_roles", "audit_logs"})
_CARBOOK_COLUMNS = frozenset(
    {"booking_status", "booked_by", "booked_at", "price_in_paise", "currency", "ref"}
)
_CARBOOK_FUNCTIONS = frozenset({"book_car_atomic"})
# 42703 "column cars.booking_status does not exist"; PGRST204 "Could not find the
# 'price_in_paise' column of 'cars' in the schema cache" (newer PostgREST) or "Column
# 'currency' of relation 'cars' does not exist" (PostgREST 12, on a write).
_MISSING_COLUMN = re.compile(
    r"column (?:\w+\.)?\"?(\w+)\"? does not exist|find the '(\w+)' column of|Column '(\w+)' of relation"
)
# 42883 "function public.book_car_atomic(car_id => uuid) does not exist"; PGRST202 "Could
# not find the function public.book_car_atomic(car_id) in the schema cache".
_MISSING_FUNCTION = re.compile(r"function (?:\w+\.)?(\w+)\(")
# 42P01 'relation "public.cars" does not exist'; PGRST205 "Could not find the table 'public.cars' …".
_MISSING_TABLE = re.compile(r"relation \"(?:\w+\.)?(\w+)\" does not exist|find the table '(?:\w+\.)?(\w+)'")


# What the gateway in front of every service (Kong on hosted Supabase, nginx in the local
# stack) answers, with a 401 and no error code, when the request's API key is missing or
# not the project's: fixed strings of the gateway's, so they are matched whole.
_GATEWAY_KEY_REFUSALS = frozenset({"Invalid API key", "No API key found in request"})
_KEY_HINT = (
    "check the project's keys: the publishable (or anon) key (--publishable-key,"
    " SUPABASE_PUBLISHABLE_KEY or SUPABASE_ANON_KEY) and, for admin work, the secret (or"
    " service_role) key (--secret-key, SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY);"
    " `carbook stack status` prints the local stack's"
)


def _key_refused(message: str) -> ConfigurationError | None:
    """A refused API key is the set-up's fault, not the database's or the user's session."""
    if message.strip() in _GATEWAY_KEY_REFUSALS:
        return ConfigurationError(
            f"the project refused the API key ({message.strip()})", status=401, hint=_KEY_HINT
        )
    return None


def _not_migrated(code: str, message: str) -> bool:
    """Whether the error says one of carbook's own tables, columns or functions is missing."""
    if code in {"42703", "PGRST204"}:
        m = _MISSING_COLUMN.search(message)
        return m is not None and (m.group(1) or m.group(2) or m.group(3)) in _CARBOOK_COLUMNS
    if code in {"42883", "PGRST202"}:
        m = _MISSING_FUNCTION.search(message)
        return m is not None and m.group(1) in _CARBOOK_FUNCTIONS
    if code in {"42P01", "PGRST205"}:
        m = _MISSING_TABLE.search(message)
        return m is not None and (m.group(1) or m.group(2)) in _CARBOOK_TABLES
    return False


def _translate_postgrest(exc: Any) -> CarbookError:
    code = str(getattr(exc, "code", "") or "").strip()
    message = str(getattr(exc, "message", "") or "").strip()
    hint = getattr(exc, "hint", None)
    detail = getattr(exc, "details", None)
    if (not code and not message) or code in {"500", "502", "503", "504", "520"}:
        # No answer worth the name (a crash mid-request, a proxy page): whether the call
        # took effect is unknown, which is exactly a connection error; retry to find out.
        return CarbookConnectionError("the REST service failed without an answer", status=503)
    message = message or str(exc)
    if not code and (refused := _key_refused(message)) is not None:
        return refused
    if _not_migrated(code, message):
        # A rolled-back or never-migrated schema: one clear error, not a made-up listing
        # or a raw "does not exist" from deep inside a query.
        return NotMigratedError(sqlstate=code, detail=message)
    if code in {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}:
        # PostgREST (or the gateway in front of it) cannot reach the database or the REST service.
        # The gateway's own 503 already says so; say it once.
        said = message.lower().rstrip(".") == "the rest service is unavailable"
        return CarbookConnectionError(
            "the REST service is unavailable" + ("" if said else f": {message}"), status=503
        )
    if code == "42501":
        return AccessDeniedError(f"permission denied: {message}", status=403)
    if code == "23514":
        m = _CHECK_CONSTRAINT.search(message)
        return ValidationError(constraint_message(m.group(1) if m else None) or message)
    if code == "22P02":
        m = INVALID_TEXT.search(message)
        return ValidationError(f"not a valid {m.group(1)}: {m.group(2)!r}" if m else message)
    if code in {"22001", "22003", "22007", "22008", "PGRST204", "PGRST100", "PGRST102"}:
        return ValidationError(message, hint=hint, detail=detail)
    if code == "23505":
        constraint = unique_constraint(message)
        return ConflictError(unique_message(constraint, detail), status=409, constraint=constraint)
    if code == "23502":
        m = _NOT_NULL.search(message)
        return ValidationError(f"{m.group(1)} is required" if m else message)
    if code == "23503" and "cars_booked_by_fkey" in message:
        # A valid token whose user has been deleted since: the booking cannot name them.
        return NotAuthenticatedError("the signed-in user no longer exists; sign in again", status=401)
    if code == "23503":
        return ValidationError(message, detail=detail)
    if code in {"PGRST301", "PGRST302", "PGRST303"}:
        return SessionExpiredError(f"the access token was refused: {message}", status=401)
    if code == "PGRST116":
        return NotFoundError(message, status=406)
    return DatabaseError(message, sqlstate=code or None, hint=hint, detail=detail)


def _translate_auth(exc: Any) -> CarbookError:
    from supabase_auth.errors import AuthRetryableError, AuthSessionMissingError, AuthWeakPasswordError

    message = str(getattr(exc, "message", "") or exc)
    status = getattr(exc, "status", None)
    if (refused := _key_refused(message)) is not None:
        return refused
    if isinstance(exc, AuthSessionMissingError):
        return NotAuthenticatedError()
    if isinstance(exc, AuthWeakPasswordError):
        reasons = ", ".join(getattr(exc, "reasons", []) or [])
        return WeakPasswordError(message, status=status, hint=f"reasons: {reasons}" if reasons else None)
    if isinstance(exc, AuthRetryableError):
        # supabase-py wraps what httpx raised (its cause): a reply that never came after
        # the request went out leaves the outcome unknown, which is not "unreachable".
        cause = _network_error(exc.__cause__, "the auth service")
        if cause is not None:
            return cause
        reason = f": {message}" if message else f" (HTTP {status})" if status else ""
        return CarbookConnectionError(f"the auth service is unreachable{reason}", status=status or None)
    kind = _AUTH_CODES.get(str(getattr(exc, "code", "") or ""))
    if kind is None:
        kind = NotAuthenticatedError if status == 401 else AccessDeniedError if status == 403 else AuthError
    if kind is InvalidCredentialsError:
        return InvalidCredentialsError(status=status)
    return kind(message, status=status, hint=_AUTH_HINTS.get(str(getattr(exc, "code", "") or "")))


def _translate_storage(exc: Any) -> CarbookError:
    status = str(getattr(exc, "status", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    if (refused := _key_refused(message)) is not None:
        return refused
    kind = _STORAGE_STATUS.get(status, StorageError)
    http = int(status) if status.isdigit() else None
    return kind(message, status=http)


class RealtimeRefusal(Exception):
    """Realtime's reason for refusing or ending a channel (``Code: message``)."""


def _translate_realtime(exc: BaseException, url: str | None) -> CarbookError | None:
    """Realtime's refusals by their code, and the WebSocket's failures."""
    from websockets.exceptions import InvalidStatus, WebSocketException

    if isinstance(exc, RealtimeRefusal):
        reason = str(exc)
        code, _, message = reason.partition(": ")
        if code == "Unauthorized":
            return AccessDeniedError(f"Realtime refused the channel: {message}")
        if code in ("InvalidJWTToken", "JwtSignatureError", "MalformedJWT"):
            return SessionExpiredError(f"Realtime refused the session: {message}; sign in again")
        return CarbookError(f"Realtime refused the channel: {reason}")
    if isinstance(exc, InvalidStatus):
        return CarbookConnectionError(
            f"Realtime at {url or 'the server'} answered HTTP {exc.response.status_code}",
            hint="Is Realtime enabled? (`[realtime] enabled` in supabase/config.toml; `carbook stack status`)",
        )
    if isinstance(exc, TimeoutError):
        return None  # a read's deadline, which the caller asked for: not a failure here
    if isinstance(exc, WebSocketException | OSError):
        return CarbookConnectionError(
            f"could not reach Realtime at {url or 'the server'}: {_os_words(exc)}",
            hint="Is the stack running? `carbook stack start` starts the local one.",
        )
    return None


#: What httpx raises once the request has gone out and before its answer is read: the
#: server may have acted on it. (A connect or pool timeout, a refused connection: it never left.)
_SENT_BUT_UNANSWERED = ("ReadTimeout", "WriteTimeout", "ReadError", "RemoteProtocolError")


def _os_words(exc: BaseException) -> str:
    """What went wrong, in the system's words without Python's: "[Errno 111] Connection
    refused" and asyncio's "Connect call failed ('127.0.0.1', 1)" both read "connection
    refused" (from the first error number found along the exception's causes)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        errno = getattr(seen, "errno", None)
        if isinstance(seen, OSError) and isinstance(errno, int) and errno > 0:
            return os.strerror(errno).lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc) or type(exc).__name__
    found = re.search(r"\[Errno -?\d+\] ([^:(]+)", text)
    return found.group(1).strip().lower() if found else text


def _network_error(exc: BaseException | None, where: str | None) -> CarbookError | None:
    """The carbook error for an httpx transport failure (None for anything else)."""
    import httpx

    if not isinstance(exc, httpx.TransportError):
        return None
    unknown = type(exc).__name__ in _SENT_BUT_UNANSWERED
    if isinstance(exc, httpx.TimeoutException):
        text = f"timed out waiting for{f' {where}' if where else ''}: {type(exc).__name__}"
    else:
        text = f"could not connect to {where or 'the server'}: {_os_words(exc)}"
    if unknown:
        return OutcomeUnknownError(
            text, hint="the request was sent, so it may have taken effect: check before repeating it"
        )
    return CarbookConnectionError(
        text,
        hint=None
        if isinstance(exc, httpx.TimeoutException)
        else "Is the stack running? `carbook stack start` starts the local one.",
    )


def translate(exc: BaseException, *, url: str | None = None) -> CarbookError | None:
    """The carbook error for a third-party exception, or None when it is not one we know."""
    import httpx
    import jwt
    import pydantic
    from postgrest.exceptions import APIError
    from storage3.exceptions import StorageApiError
    from supabase._async.client import SupabaseException as AsyncSupabaseException
    from supabase._sync.client import SupabaseException as SyncSupabaseException
    from supabase_auth.errors import AuthError as SupabaseAuthError

    if isinstance(exc, CarbookError):
        return exc
    live = _translate_realtime(exc, url)
    if live is not None:
        return live
    if isinstance(exc, APIError):
        return _translate_postgrest(exc)
    if isinstance(exc, SupabaseAuthError):
        return _translate_auth(exc)
    if isinstance(exc, StorageApiError):
        return _translate_storage(exc)
    network = _network_error(exc, url)
    if network is not None:
        return network
    if isinstance(exc, httpx.HTTPStatusError):
        return CarbookError(
            f"HTTP {exc.response.status_code} from {exc.request.url}", status=exc.response.status_code
        )
    if isinstance(exc, httpx.InvalidURL):
        return ConfigurationError(f"not a valid project URL: {exc}")
    if isinstance(exc, httpx.HTTPError):  # what is left: a reply that could not be read
        return CarbookConnectionError(f"unreadable reply from{f' {url}' if url else ' the server'}: {exc}")
    if isinstance(exc, pydantic.ValidationError):
        return ValidationError(f"unexpected reply: {exc.errors()[0]['msg']}")
    if isinstance(exc, jwt.PyJWTError):
        # supabase-py's get_claims loads the JWKS key the token's header names with PyJWT:
        # a header whose algorithm does not fit that key fails there.
        return SessionExpiredError(f"the access token could not be verified ({exc}); sign in again")
    if isinstance(exc, (AsyncSupabaseException, SyncSupabaseException)):
        # supabase-py's own checks of the URL and key, before any request.
        return ConfigurationError(f"invalid project settings: {getattr(exc, 'message', None) or exc}")
    return None
