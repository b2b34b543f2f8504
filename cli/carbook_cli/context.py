"""Global options, and the SDK clients commands get from them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from carbook_sdk import AdminBooking, AsyncCarbook, Carbook
    from carbook_sdk.settings import Settings


class State:
    """What the app callback parsed; read by every command."""

    verbose = False
    #: `--json` is on the command line: errors are a JSON document on stdout too.
    json = False
    #: A JSON document is on stdout already: an error after it (db status on drift, a
    #: refused import) adds none, so stdout stays one document, the command's own.
    json_printed = False
    url: str | None = None
    key: str | None = None
    secret_key: str | None = None
    workdir: Path | None = None


state = State()


def config_dir() -> Path:
    """``$CARBOOK_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/carbook``, else ``~/.config/carbook``."""
    explicit = os.environ.get("CARBOOK_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carbook"


def settings() -> Settings:
    from carbook_sdk.settings import Settings

    return Settings.resolve(url=state.url, key=state.key, secret_key=state.secret_key)


def session_path(url: str) -> Path:
    """One session file per project URL: a session for one project is no use on another."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", url.split("://", 1)[-1]).strip("_")
    return config_dir() / "sessions" / f"{name}.json"


def check_session_writable() -> None:
    """Before signing in: a session that could not be saved would leave the server with
    one nobody holds (and the command would fail after the sign-in, not before)."""
    from carbook_sdk import FileSessionStore

    FileSessionStore(session_path(settings().url)).check_writable()


def client() -> Carbook:
    """A sync client for the configured project, with the saved session (0600 file)."""
    from carbook_sdk import Carbook, FileSessionStore

    s = settings()
    return Carbook(settings=s, session_store=FileSessionStore(session_path(s.url)))


def async_client(*, signed_in: bool = False) -> AsyncCarbook:
    """An async client: with the saved session when ``signed_in``, else a fresh one."""
    from carbook_sdk import AsyncCarbook, AsyncFileSessionStore

    s = settings()
    store = AsyncFileSessionStore(session_path(s.url)) if signed_in else None
    return AsyncCarbook(settings=s, session_store=store)


def car_id(cb: Carbook, given: str, *, signed_in: bool = False) -> str:
    """The car a whole id or a unique prefix (at least 8 characters) names. ``signed_in``:
    the command needs a user, so a signed-out caller is told that first (a prefix is
    looked up among the cars the caller may see, and a visitor sees no booked car)."""
    from carbook_sdk.errors import CarNotFoundError, NotAuthenticatedError

    try:
        return str(cb.cars.resolve(given))
    except CarNotFoundError:
        if signed_in and cb.auth.access_token() is None:
            raise NotAuthenticatedError("sign in first") from None
        raise


def bookers(cb: Carbook, car_ids: Iterable[object]) -> dict[object, AdminBooking]:
    """Each booked car's booking as admins see it (the booker's email); empty for anyone
    else, who may not know who booked a car."""
    wanted = set(car_ids)
    if not wanted or not cb.auth.is_admin():
        return {}
    found: dict[object, AdminBooking] = {}
    cursor = None
    while True:
        page = cb.admin.bookings(limit=1000, cursor=cursor)
        found.update({b.car_id: b for b in page.items if b.car_id in wanted})
        cursor = page.next_cursor
        if cursor is None or wanted <= set(found):
            return found


def booker_text(booking: AdminBooking | None) -> str | None:
    """Who booked a car and when, for people."""
    if booking is None:
        return None
    who = booking.booker_email or str(booking.booked_by or "a deleted user")
    return f"{who} at {booking.booked_at:%Y-%m-%d %H:%M:%S %Z}"


def ask(what: str, *, secret: bool = False, confirm: bool = False) -> str:
    """A value the command line left out: asked on the terminal (hidden when ``secret``,
    twice when ``confirm``); from a pipe or a file (a script), its next line, read as it
    is (getpass would warn that it cannot hide what a pipe never shows).

    Raises:
        ValidationError: stdin is not a terminal and has no line to give; names the option
            and the variable that give the value instead.
    """
    import sys

    import typer

    from carbook_sdk.env import EMAIL_VARS, PASSWORD_VARS
    from carbook_sdk.errors import ValidationError

    if sys.stdin is not None and sys.stdin.isatty():
        answer: str = typer.prompt(what, hide_input=secret, confirmation_prompt=confirm)
        return answer
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        option, names = ("--password", PASSWORD_VARS) if secret else ("--email", EMAIL_VARS)
        raise ValidationError(
            f"no {what.lower()} given, and no terminal to ask for it on: pass {option} or set {names[0]}"
        )
    return line.rstrip("\r\n")
