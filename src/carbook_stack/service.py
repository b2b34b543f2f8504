"""What every service of the stack's Python app shares (Auth and Storage now, anything
later): the app's state (settings, the database pool, the keys), the route wrapper
``endpoint`` that checks the apikey and turns errors into the service's own replies,
apikey and bearer handling, body limits and JSON checks, and the one answer for a
database that is unavailable or busy.

The apikey is checked again here although nginx (``carbook_stack.nginx``) checked it on
the API port, so the app is never open on its own port either. When a request carries
no user token (no ``Authorization``, or a ``Bearer`` of an ``sb_`` key), the JWT its
apikey stands for is its bearer token: the publishable key acts as the anon JWT, the
secret key as the service_role JWT, as the Supabase CLI's gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .nginx import KEY_REFUSALS
from .settings import StackSettings
from .tokens import KeySet

__all__ = [
    "MAX_JSON_BODY",
    "MAX_JSON_DEPTH",
    "UNEXPECTED",
    "AppState",
    "DatabaseBusy",
    "InvalidInput",
    "ServiceError",
    "apikey_of",
    "ascii_int",
    "bearer_of",
    "check_apikey",
    "check_text",
    "database_unavailable",
    "endpoint",
    "load_json",
    "not_found",
    "read_limited",
    "request_id",
    "state_of",
]

log = logging.getLogger(__name__)

#: Largest JSON body the app accepts on Auth routes (uploads excepted).
MAX_JSON_BODY = 1024 * 1024
#: Seconds a request waits for a pooled connection before asking whether the database is
#: there at all: one that is down is a 503 at once, not after the pool's whole wait (30 s).
POOL_PATIENCE = 1.0
#: Seconds one probe's answer stands for every request that asks.
PROBE_TTL = 1.0
#: Seconds a request waits in all for a pooled connection while the database is up: past
#: that the app is busy, a 503 with ``Retry-After``, never "the database is unavailable".
POOL_WAIT = 10.0
#: Seconds a client is asked to wait before it tries again after a 503.
RETRY_AFTER = 1
#: Deepest nesting of arrays and objects in a JSON body. Far more than any Auth or Storage
#: body has (user metadata included); a deeper one is refused before anything is done.
MAX_JSON_DEPTH = 64


class InvalidInput(Exception):
    """A request value the app refuses before doing anything with it: JSON that does not
    parse (``syntax``) or holds what the database cannot store (``value``)."""

    def __init__(self, message: str, kind: str = "value") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind


class DatabaseBusy(Exception):
    """Every pooled connection stayed in use for ``POOL_WAIT`` while the database was up."""


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _no_constant(text: str) -> float:
    raise _NotFinite(text)


def check_text(value: str) -> str:
    """``value``, if the database can store it as text: no NUL, no lone surrogate.

    Raises:
        InvalidInput: naming which.
    """
    if "\x00" in value:
        raise InvalidInput("text may not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("text may not contain a lone surrogate (\\ud800-\\udfff)") from None
    return value


def load_json(raw: bytes) -> Any:
    """A JSON body, parsed and checked so that every part of it can be stored: nested at
    most ``MAX_JSON_DEPTH`` deep, finite numbers only, text without NUL or lone surrogates.

    Raises:
        InvalidInput: ``syntax`` when it is not JSON or nested too deep, ``value`` for the rest.
    """
    try:
        data = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "syntax") from None
    except _NotFinite:
        raise InvalidInput("a number is out of range") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of thousands of digits
        raise InvalidInput("the body is not valid JSON", "syntax") from None
    # Iterative, so no depth the parser accepted can exhaust the stack here.
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "syntax")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    check_text(key)
                pending.append((item, depth + 1))
        elif isinstance(value, str):
            check_text(value)
    return data


def ascii_int(raw: str) -> int | None:
    """``raw`` as a whole number when it is ASCII digits only (not "²" or "٣", which
    ``str.isdigit`` and ``int`` accept), else None."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


@dataclass
class AppState:
    """Shared state of the running app: its settings, database pool and keys."""

    settings: StackSettings
    pool: AsyncConnectionPool
    keys: KeySet
    #: Each accepted API key, with the JWT it stands for behind the gateway.
    key_jwts: dict[str, str] = field(init=False)
    _probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _probed: tuple[float, str | None] = (float("-inf"), None)

    def __post_init__(self) -> None:
        self.key_jwts = self.settings.key_jwts()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, as ``pool.connection()`` gives one, except that when none is
        free at once the database is probed first.

        Raises:
            psycopg.OperationalError: the database cannot be reached.
            DatabaseBusy: it can, but no connection was free within ``POOL_WAIT``.
        """
        try:
            conn = await self.pool.getconn(timeout=POOL_PATIENCE)
        except PoolTimeout:
            await self._reachable()
            try:
                conn = await self.pool.getconn(timeout=POOL_WAIT - POOL_PATIENCE)
            except PoolTimeout:
                raise DatabaseBusy from None
        try:
            async with conn:
                yield conn
        finally:
            await self.pool.putconn(conn)

    async def _reachable(self) -> None:
        """Raise OperationalError if the database refuses a new connection now.

        One probe at a time, its answer shared for ``PROBE_TTL``: a queue of requests
        waiting on a busy pool must not turn into a storm of connection attempts.
        """
        async with self._probe_lock:
            at, refusal = self._probed
            if time.monotonic() - at > PROBE_TTL:
                try:
                    probe = await psycopg.AsyncConnection.connect(self.settings.db_url, connect_timeout=2)
                    await probe.close()
                    refusal = None
                except psycopg.OperationalError as exc:
                    refusal = str(exc) or type(exc).__name__
                self._probed = (time.monotonic(), refusal)
        if refusal is not None:
            raise psycopg.OperationalError(refusal)


def state_of(request: Request) -> AppState:
    """The running app's state, as the request's route sees it."""
    state: AppState = request.app.state.carbook
    return state


def kong_error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status)


def apikey_of(request: Request) -> str | None:
    return request.headers.get("apikey") or request.query_params.get("apikey")


def check_apikey(request: Request) -> JSONResponse | None:
    """None when the request carries a valid API key, else the 401 hosted Supabase sends
    (the same bodies as nginx's, on the API port)."""
    key = apikey_of(request)
    app = state_of(request)
    if not key:
        refusal = "missing"
    elif key not in app.key_jwts:
        refusal = "invalid"
    elif key == app.settings.secret_key and from_browser(request):
        refusal = "secret_in_browser"
    else:
        return None
    return JSONResponse(KEY_REFUSALS[refusal], status_code=401)


def from_browser(request: Request) -> bool:
    """Whether a request looks like a browser's, as hosted Supabase judges it for the secret
    key: a browser's User-Agent (every one starts with ``Mozilla/``), or an ``Origin``,
    which only browsers send on their own. nginx applies the same rule on the API port."""
    return request.headers.get("user-agent", "").startswith("Mozilla/") or bool(request.headers.get("origin"))


def bearer_of(request: Request) -> str:
    """The bearer token: the Authorization header's when it is a user's (or a legacy key),
    else the JWT the apikey stands for (the apikey itself when it is unknown: refused
    later as an invalid token)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        if token and not token.startswith("sb_"):
            return token
    key = apikey_of(request) or ""
    return state_of(request).key_jwts.get(key, key)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def database_unavailable(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the database cannot be reached (down, restarting, out of
    connections, no pooled connection in time) rather than that it refused a statement."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    # No SQLSTATE: the client's side of a lost or refused connection (PoolTimeout too).
    state = exc.sqlstate or ""
    return not state or state.startswith("08") or state in {"57P01", "57P02", "57P03", "53300"}


def database_busy(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the database is up but has no connection to spare."""
    return isinstance(exc, psycopg.OperationalError) and exc.sqlstate == "53300"


def request_id(request: Request) -> str:
    """The id nginx gave the request (in its access log and the reply), else a new one."""
    return request.headers.get("x-request-id") or uuid.uuid4().hex


class ServiceError(Exception):
    """An error a service (Auth, Storage) answers in its own shape."""

    def response(self, request: Request) -> Response:
        raise NotImplementedError

    @classmethod
    def busy(cls) -> ServiceError:
        """The service's 503 for a database that is up with no connection to spare."""
        raise NotImplementedError

    @classmethod
    def unexpected(cls, request_id: str) -> ServiceError:
        """The service's 500 for an error no handler expected, naming the request's id."""
        raise NotImplementedError

    @classmethod
    def from_database(cls, exc: psycopg.Error) -> ServiceError:
        """The service's error for a database error its handler let through: a 503 when
        ``database_unavailable(exc)``, else a 500 unless the service knows better."""
        raise NotImplementedError

    @classmethod
    def bad_path(cls) -> ServiceError:
        """The service's 400 for a path whose percent-escapes are not UTF-8."""
        raise NotImplementedError


def endpoint(handler: Any, errors: type[ServiceError], *, needs_key: bool = True) -> Any:
    """A route for ``handler(request, state)``: the apikey check, then the handler, with
    the service's own errors, and the database errors it lets through, turned into the
    service's own error replies (``errors``)."""

    async def run(request: Request) -> Response:
        if needs_key:
            denied = check_apikey(request)
            if denied:
                return denied
        if not utf8_path(request):
            # The server decodes such escapes to U+FFFD: two different names would be one.
            return errors.bad_path().response(request)
        try:
            response: Response = await handler(request, state_of(request))
            return response
        except ServiceError as err:
            return err.response(request)
        except DatabaseBusy:
            log.warning("%s %s: no database connection free in time", request.method, request.url.path)
            return _retry_later(errors.busy().response(request))
        except psycopg.Error as exc:
            # The one place each service's database errors are answered, so that a client
            # always gets the service's JSON shape (and, for an outage, a status it
            # retries), never a plain-text 500. The details go to the log only.
            if database_busy(exc):
                log.warning(
                    "%s %s: the database has no connection to spare", request.method, request.url.path
                )
                return _retry_later(errors.busy().response(request))
            if database_unavailable(exc):
                log.warning("%s %s: the database is unavailable: %s", request.method, request.url.path, exc)
                return _retry_later(errors.from_database(exc).response(request))
            log.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
            return errors.from_database(exc).response(request)
        except Exception as exc:
            # The last resort: whatever no check foresaw is still the service's JSON 500,
            # with the id that finds it in the log. No input should ever get here.
            rid = request_id(request)
            log.error(
                "%s %s: %s (request %s)", request.method, request.url.path, UNEXPECTED, rid, exc_info=exc
            )
            return errors.unexpected(rid).response(request)

    return run


def utf8_path(request: Request) -> bool:
    """Whether the request's path, its percent-escapes decoded, is UTF-8."""
    raw = request.scope.get("raw_path")
    if not raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        return False
    return True


#: What the log says when the last-resort handler answers (tests look for it).
UNEXPECTED = "unexpected error"


def _retry_later(response: Response) -> Response:
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


async def not_found(request: Request) -> Response:
    return kong_error(404, "no Route matched with those values")
