"""The local stack's Python app, behind nginx on an internal port:

- ``/auth/v1/*`` is a Supabase Auth (GoTrue) stand-in (``auth``);
- ``/storage/v1/*`` is a Supabase Storage stand-in (``storage``).

nginx (``carbook_stack.nginx``) owns the API port: it checks the apikey and sends
``/rest/v1`` straight to PostgREST. The app checks the apikey again on its own routes,
so it is never open on its port either. When a request carries no user token (no
``Authorization``, or a ``Bearer`` of an ``sb_`` key), the JWT its apikey stands for is
its bearer token: the publishable key acts as the anon JWT, the secret key as the
service_role JWT, as the Supabase CLI's gateway does.

Run as ``python -m carbook_stack.gateway STACK_JSON`` (``LocalStack`` does that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .nginx import KEY_REFUSALS
from .settings import StackSettings, load_settings
from .tokens import KeySet

__all__ = ["Gateway", "ServiceError", "create_app", "database_unavailable", "endpoint", "main"]

log = logging.getLogger(__name__)

#: Largest JSON body the app accepts on Auth routes (uploads excepted).
MAX_JSON_BODY = 1024 * 1024
#: Seconds a request waits for a pooled connection before asking whether the database is
#: there at all: one that is down is a 503 at once, not after the pool's whole wait (30 s).
POOL_PATIENCE = 1.0
#: Seconds one probe's answer stands for every request that asks.
PROBE_TTL = 1.0


@dataclass
class Gateway:
    """Shared state of the running app."""

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
            psycopg.OperationalError: the database cannot be reached, or no connection was
                free within the pool's timeout (``PoolTimeout``).
        """
        try:
            conn = await self.pool.getconn(timeout=POOL_PATIENCE)
        except PoolTimeout:
            await self._reachable()
            conn = await self.pool.getconn()
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


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


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
    gw = gateway(request)
    if not key:
        refusal = "missing"
    elif key not in gw.key_jwts:
        refusal = "invalid"
    elif key == gw.settings.secret_key and from_browser(request):
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
    return gateway(request).key_jwts.get(key, key)


async def _read_limited(request: Request, limit: int) -> bytes | None:
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


class ServiceError(Exception):
    """An error a service (Auth, Storage) answers in its own shape."""

    def response(self, request: Request) -> Response:
        raise NotImplementedError

    @classmethod
    def from_database(cls, exc: psycopg.Error) -> ServiceError:
        """The service's error for a database error its handler let through: a 503 when
        ``database_unavailable(exc)``, else a 500 unless the service knows better."""
        raise NotImplementedError


def endpoint(handler: Any, errors: type[ServiceError], *, needs_key: bool = True) -> Any:
    """A route for ``handler(request, gateway)``: the apikey check, then the handler, with
    the service's own errors, and the database errors it lets through, turned into the
    service's own error replies (``errors``)."""

    async def run(request: Request) -> Response:
        if needs_key:
            denied = check_apikey(request)
            if denied:
                return denied
        try:
            response: Response = await handler(request, gateway(request))
            return response
        except ServiceError as err:
            return err.response(request)
        except psycopg.Error as exc:
            # The one place each service's database errors are answered, so that a client
            # always gets the service's JSON shape (and, for an outage, a status it
            # retries), never a plain-text 500. The details go to the log only.
            if database_unavailable(exc):
                log.warning("%s %s: the database is unavailable: %s", request.method, request.url.path, exc)
            else:
                log.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
            return errors.from_database(exc).response(request)

    return run


async def not_found(request: Request) -> Response:
    return kong_error(404, "no Route matched with those values")


def create_app(settings: StackSettings) -> Starlette:
    """The gateway app for a stack's settings."""
    from . import auth, storage

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Every connection is checked as it is handed out (one empty round trip): after the
        # database restarts, the pool's old connections are all dead, and a request must
        # get a new one, not a 500.
        async with AsyncConnectionPool(
            settings.db_url,
            min_size=1,
            max_size=20,
            open=False,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
        ) as pool:
            await pool.wait()
            app.state.gateway = Gateway(settings=settings, pool=pool, keys=settings.keys())
            yield

    return Starlette(
        routes=[
            Mount("/auth/v1", routes=auth.routes()),
            Mount("/storage/v1", routes=storage.routes()),
            Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m carbook_stack.gateway STACK_JSON")
    settings = load_settings(Path(args[0]))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.app_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Longer than nginx keeps an idle upstream connection (60 s), so nginx always closes
        # it first and never sends a request into one the app just closed.
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
