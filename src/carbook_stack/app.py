"""The local stack's Python app, behind nginx on an internal port: ``/auth/v1/*`` is a
Supabase Auth (GoTrue) stand-in (``auth``), ``/storage/v1/*`` a Supabase Storage
stand-in (``storage``). What they share is in ``service``.

Run as ``python -m carbook_stack.app STACK_JSON`` (the stack's ``App`` part does that).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from . import auth, storage
from .auth.http import AuthError
from .service import AppState, kong_error, not_found
from .settings import StackSettings, load_settings
from .storage.errors import no_route

__all__ = ["create_app", "main"]

#: Auth routes of hosted GoTrue that send mail and the local stack does not serve.
_MAIL_ROUTES = ("/invite",)


async def _no_route(request: Request, exc: Exception) -> Response:
    """A path or a method no route serves, answered in the shape of the service it is
    under (Starlette's own answer is plain text, which clients cannot read)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    path, method = request.url.path, request.method
    if path.startswith("/auth/v1/"):
        route = path.removeprefix("/auth/v1")
        if status == 405:
            err = AuthError(405, "method_not_allowed", f"{method} is not allowed on {route}")
        elif route in _MAIL_ROUTES:
            err = AuthError(
                404,
                "not_found",
                f"{route} is not served by the local stack: invite with auth.admin.generate_link "
                "(type invite) and send the link it makes",
            )
        else:
            err = AuthError(404, "not_found", f"{method} {route} is not served by the local stack's Auth")
        response = err.response(request)
    elif path.startswith("/storage/v1/"):
        response = no_route(method, path.removeprefix("/storage/v1")).response(request)
    else:
        response = kong_error(404, "no Route matched with those values")
    if isinstance(exc, HTTPException) and exc.headers and response.status_code == 405:
        response.headers.update(exc.headers)  # Allow: the methods the path takes
    return response


def create_app(settings: StackSettings) -> Starlette:
    """The app for a stack's settings."""

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
            async with pool.connection() as conn:
                await auth.prepare(conn)  # Auth's own tables, as GoTrue migrates its own
            app.state.carbook = AppState(settings=settings, pool=pool, keys=settings.keys())
            yield

    return Starlette(
        routes=[
            Mount("/auth/v1", routes=auth.routes()),
            Mount("/storage/v1", routes=storage.routes()),
            Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: _no_route, 405: _no_route},
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m carbook_stack.app STACK_JSON")
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
