"""The async client, ``AsyncCarbook``, and the one request helper every service goes through.

The ``_async/`` folder is the source of both clients: ``scripts/unasync.py`` writes the
sync twins in ``_sync/`` from it (and a test keeps them in step). Edit here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from supabase import AsyncClient, AsyncClientOptions
from supabase_auth import AsyncMemoryStorage, AsyncSupportedStorage

from .._translate import translate
from ..errors import (
    AccessDeniedError,
    AuthError,
    CarbookConnectionError,
    CarbookError,
    ConfigurationError,
    NotAuthenticatedError,
    NotFoundError,
    SessionExpiredError,
)
from ..models import Claims
from ..settings import Settings
from ..tokens import ASYMMETRIC, token_header, verify_access_token
from .admin import AsyncAdminService
from .audit import AsyncAuditService
from .auth import AsyncAuthService
from .bookings import AsyncBookingsService
from .cars import AsyncCarsService
from .images import AsyncImagesService

if TYPE_CHECKING:
    from ..ops import Database

__all__ = ["AsyncCarbook"]

T = TypeVar("T")

#: How long a fetched key set is trusted before it is fetched again (Supabase rotates
#: signing keys with an overlap far longer than this).
_JWKS_TTL = 600.0


@dataclass(frozen=True)
class _BoundUser:
    id: str


@dataclass(frozen=True)
class _BoundSession:
    """What a client made by ``as_user`` has instead of a session: the caller's token."""

    access_token: str
    user: _BoundUser


class AsyncCarbook:
    """The carbook client (async). One client is one signed-in user at a time.

    Build it from explicit arguments — the project URL and its publishable key
    (``sb_publishable_…``, or a legacy anon key) — the environment (``CARBOOK_URL``,
    ``CARBOOK_PUBLISHABLE_KEY``, … then their ``SUPABASE_*`` twins; the legacy ``*_ANON_KEY``
    names are read too) or the local stack (``AsyncCarbook.local()``)::

        async with AsyncCarbook.local() as cb:
            await cb.auth.sign_in("driver@carbook.local", "carbook-driver")
            page = await cb.cars.list_available(limit=10)
            booking = await cb.bookings.book(page.items[0].id)

    Raises:
        ConfigurationError: the settings are missing or invalid.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        secret_key: str | None = None,
        service_role_key: str | None = None,
        anon_key: str | None = None,
        db_url: str | None = None,
        timeout: float | None = None,
        jwt_secret: str | None = None,
        session_store: AsyncSupportedStorage | None = None,
        settings: Settings | None = None,
    ) -> None:
        # ``anon_key=``/``service_role_key=`` are the legacy names, kept as aliases.
        self.settings = settings or Settings.resolve(
            url=url,
            key=_one_of("key", key, "anon_key", anon_key),
            secret_key=_one_of("secret_key", secret_key, "service_role_key", service_role_key),
            db_url=db_url,
            timeout=timeout,
            jwt_secret=jwt_secret,
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=True,
        )
        self._sb = self._supabase(
            self.settings.key,
            AsyncClientOptions(
                storage=session_store or AsyncMemoryStorage(),
                auto_refresh_token=False,  # refreshed on demand: no background timers
                persist_session=True,
                httpx_client=self._http,
                flow_type="implicit",  # password sign-in needs no PKCE verifier on disk
            ),
        )
        self._service: AsyncClient | None = None
        # One refresh at a time: two tasks refreshing with the same single-use refresh
        # token would look like token theft to the server, which then ends the session.
        self._session_lock = asyncio.Lock()
        self._restored = False
        # Whether Auth has vouched for the session: a session saved in a store may have
        # been ended (signed out elsewhere, its user deleted, the project reset) since.
        self._session_checked = False
        self._admin_for: str | None = None
        self._is_admin = False
        self._owns_http = True
        #: Set on a client made by ``as_user``: the token it acts with, in place of a session.
        self._bound: _BoundSession | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None
        self._services()

    def _services(self) -> None:
        self.auth = AsyncAuthService(self)
        self.cars = AsyncCarsService(self)
        self.bookings = AsyncBookingsService(self)
        self.images = AsyncImagesService(self)
        self.audit = AsyncAuditService(self)
        self.admin = AsyncAdminService(self)

    @classmethod
    def local(
        cls,
        state_dir: Path | None = None,
        *,
        timeout: float | None = None,
        session_store: AsyncSupportedStorage | None = None,
    ) -> AsyncCarbook:
        """A client for the local stack (``carbook stack start``), ignoring the environment.

        Raises:
            ConfigurationError: the local settings are invalid.
        """
        settings = Settings.resolve(env={}, state_dir=state_dir, timeout=timeout)
        return cls(settings=settings, session_store=session_store)

    @classmethod
    def from_env(
        cls, *, timeout: float | None = None, session_store: AsyncSupportedStorage | None = None
    ) -> AsyncCarbook:
        """A client from ``CARBOOK_*``/``SUPABASE_*`` variables only (no local defaults).

        Raises:
            ConfigurationError: a variable is missing or invalid.
        """
        settings = Settings.resolve(use_local_defaults=False, timeout=timeout)
        return cls(settings=settings, session_store=session_store)

    def __repr__(self) -> str:
        return f"AsyncCarbook(url={self.settings.url!r})"

    async def as_user(self, access_token: str) -> AsyncCarbook:
        """A light client acting as the user of ``access_token`` (a web service's caller).

        The token is verified first, here, without asking Auth: ES256 (or RS256) against
        the project's published keys (``/auth/v1/.well-known/jwks.json``, fetched once and
        cached), HS256 with ``jwt_secret`` when configured. Every request the new client
        makes carries that token, so the database decides as it would for the user
        themselves. It shares this client's connection pool, stores nothing and never
        signs in (its ``auth.sign_in`` and the like refuse); it is as cheap to make per
        request as a dictionary. Closing it leaves this client's pool open::

            user = await carbook.as_user(token)
            await user.bookings.book(car_id)

        Raises:
            InvalidTokenError: expired, forged, signed by a key the project does not
                publish, or not a signed-in user's token (nothing is sent with it).
            CarbookConnectionError: the key set could not be fetched.
        """
        header = token_header(access_token)
        jwks = await self._signing_keys() if header.get("alg") in ASYMMETRIC else None
        claims = verify_access_token(access_token, jwks=jwks, jwt_secret=self.settings.jwt_secret)
        return self._bound_to(access_token, claims)

    def _bound_to(self, token: str, claims: Claims) -> AsyncCarbook:
        child = object.__new__(type(self))
        child.settings = self.settings
        child._http = self._http
        child._owns_http = False
        child._sb = self._supabase(
            self.settings.key,
            AsyncClientOptions(
                storage=AsyncMemoryStorage(),
                auto_refresh_token=False,
                persist_session=False,
                httpx_client=self._http,
                headers={"Authorization": f"Bearer {token}"},
            ),
        )
        child._service = self._service
        child._session_lock = asyncio.Lock()
        child._restored = True
        child._session_checked = True
        child._admin_for = None
        child._is_admin = False
        child._bound = _BoundSession(access_token=token, user=_BoundUser(id=str(claims.sub)))
        child._jwks = None
        child._services()
        return child

    async def _signing_keys(self) -> dict[str, Any]:
        """The project's published signing keys, cached for ``_JWKS_TTL`` seconds."""
        now = monotonic()
        if self._jwks is not None and now - self._jwks[0] < _JWKS_TTL:
            return self._jwks[1]
        url = f"{self.settings.url}/auth/v1/.well-known/jwks.json"
        reply = await self._call(self._http.get, url, headers={"apikey": self.settings.key})
        if reply.status_code != 200:
            raise CarbookConnectionError(
                f"could not fetch the project's signing keys (HTTP {reply.status_code})"
            )
        keys = reply.json()
        self._jwks = (now, keys if isinstance(keys, dict) else {})
        return self._jwks[1]

    def _refuse_bound(self, what: str) -> None:
        if self._bound is not None:
            raise ConfigurationError(
                f"{what} is not for a client made by as_user: it acts as its token's user"
                " and keeps no session of its own"
            )

    @property
    def sync_db(self) -> Database:
        """Schema operations (migrate, status, verify, rollback) over ``db_url``: a sync
        object on both clients, as its name says (``db`` is the same object)."""
        return self.db

    @property
    def db(self) -> Database:
        """Schema operations (migrate, status, verify, rollback) over ``db_url``.

        A **sync** object, on both clients (also reachable as ``sync_db``, which says
        so): ops calls over a direct, blocking PostgreSQL connection; from async code,
        run them in a thread (``await asyncio.to_thread(cb.db.status)``). They
        need the ``ops`` extra (``pip install "carbook[ops]"``).

        Raises:
            ConfigurationError: no database URL is configured, or psycopg is not installed.
        """
        if not self.settings.db_url:
            raise ConfigurationError("no database URL: pass db_url or set SUPABASE_DB_URL")
        from ..ops import Database

        return Database(self.settings.db_url)

    async def aclose(self) -> None:
        """Close the client's connections (a client made by ``as_user`` leaves its
        parent's pool open)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncCarbook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # The one error boundary -------------------------------------------------------------
    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Make one request to Supabase; its supabase-py, httpx or pydantic errors come
        out as carbook errors. Every request of every service goes through here."""
        try:
            return await fn(*args, **kwargs)
        except CarbookError:
            raise
        except Exception as exc:
            mapped = translate(exc, url=self.settings.url)
            if mapped is None:
                raise
            raise mapped from exc

    def _supabase(self, key: str, options: AsyncClientOptions) -> AsyncClient:
        try:
            return AsyncClient(self.settings.url, key, options)
        except Exception as exc:  # supabase-py checks the URL and key shapes itself
            mapped = translate(exc, url=self.settings.url)
            if mapped is None:
                raise
            raise mapped from exc

    # Internals --------------------------------------------------------------------------
    async def _session(self) -> Any:
        """The signed-in session (refreshed when about to expire), or None.

        Raises:
            SessionExpiredError: the session in the store has ended since it was saved.
        """
        if self._bound is not None:
            return self._bound
        async with self._session_lock:
            checking = not self._session_checked
            try:
                session = await self._call(self._sb.auth.get_session)
                if session is not None and checking:
                    # The token alone would still pass PostgREST (a valid signature, a
                    # user id that may even exist again after a reset): ask Auth, once.
                    await self._call(self._sb.auth.get_user, session.access_token)
                    self._session_checked = True
            except (AuthError, NotFoundError) as exc:
                if not checking:
                    raise
                raise SessionExpiredError(
                    "the saved session has ended (signed out, its user deleted, or the project reset);"
                    " sign in again",
                    status=exc.status,
                ) from exc
        if session is not None and not self._restored:
            # A session restored from the store: make REST and Storage use it.
            self._sb.options.headers["Authorization"] = f"Bearer {session.access_token}"
            self._sb._postgrest = None
            self._sb._storage = None
        self._restored = True
        return session

    async def _session_token(self) -> str | None:
        """The signed-in user's access token (refreshed when about to expire), or None."""
        session = await self._session()
        return str(session.access_token) if session else None

    # Every request builder comes from these, after the session is in place: a builder
    # made before a stored session is restored would still carry the anon key.
    async def _from(self, table: str) -> Any:
        await self._session_token()
        return self._sb.table(table)

    async def _rpc(self, fn: str, params: dict[str, Any], *, signed_in: bool = False) -> Any:
        """An RPC builder; ``signed_in``: refuse without a session (one session lookup
        instead of two on the booking path)."""
        token = await self._session_token()
        if signed_in and token is None:
            raise NotAuthenticatedError("sign in first")
        return self._sb.rpc(fn, params)

    async def _bucket(self) -> Any:
        await self._session_token()
        return self._sb.storage.from_(self.settings.bucket)

    async def _require_user(self) -> str:
        token = await self._session_token()
        if token is None:
            raise NotAuthenticatedError("sign in first")
        return token

    async def _user_id(self) -> str:
        session = await self._session()
        if session is None:
            raise NotAuthenticatedError("sign in first")
        return str(session.user.id)

    async def _check_admin(self, what: str) -> None:
        if not await self.auth.is_admin():
            raise AccessDeniedError(f"{what} is for admins only", status=403)

    def _service_client(self) -> AsyncClient:
        if self._service is None:
            key = self.settings.secret_key
            if not key:
                raise ConfigurationError(
                    "this needs the secret key: set SUPABASE_SECRET_KEY (or pass --secret-key / secret_key=)"
                )
            self._service = self._supabase(
                key,
                AsyncClientOptions(
                    storage=AsyncMemoryStorage(),
                    auto_refresh_token=False,
                    persist_session=False,
                    httpx_client=self._http,
                ),
            )
        return self._service

    def _public_url(self, path: str) -> str:
        return f"{self.settings.url}/storage/v1/object/public/{self.settings.bucket}/{path}"


def _one_of(name: str, value: str | None, alias: str, alias_value: str | None) -> str | None:
    """A setting given by its name or its legacy alias, not both with different values.

    Raises:
        ConfigurationError: both are given and differ.
    """
    if value is not None and alias_value is not None and value != alias_value:
        raise ConfigurationError(f"{name}= and {alias}= are the same setting: pass one of them")
    return value if value is not None else alias_value
