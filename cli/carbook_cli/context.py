"""Global options, and the SDK clients commands get from them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carbook_sdk import AsyncCarbook, Carbook
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
