"""Where carbook's SQL lives, and the local defaults from ``supabase/config.toml``."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import ConfigurationError

__all__ = [
    "BucketConfig",
    "LocalConfig",
    "default_db_url",
    "load_local_config",
    "parse_size",
    "project_root",
    "supabase_dir",
]

#: The Supabase CLI's well-known local JWT secret and keys (public by design).
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5"
    "ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
LOCAL_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIs"
    "ImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


def supabase_dir() -> Path:
    """The folder with carbook's ``migrations/``, ``rollbacks/``, ``seed.sql`` and ``config.toml``.

    ``CARBOOK_SUPABASE_DIR`` wins; then the copy bundled in an installed wheel; then
    the source tree's ``supabase/`` (editable installs and checkouts).

    Raises:
        ConfigurationError: no such folder was found.
    """
    env = os.environ.get("CARBOOK_SUPABASE_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "_supabase", here.parents[1] / "supabase"]
    for folder in candidates:
        if (folder / "migrations").is_dir():
            return folder
    raise ConfigurationError(
        "carbook's supabase/ folder (migrations, rollbacks, seed) was not found",
        hint="set CARBOOK_SUPABASE_DIR to it",
    )


def project_root() -> Path:
    """Where the project's ``.carbook/`` (stack state, tools) lives.

    In a checkout, the folder holding ``supabase/``; for an installed wheel, whose SQL is
    bundled inside the package, the current folder (never site-packages).
    """
    folder = supabase_dir()
    return Path.cwd() if folder.name == "_supabase" else folder.parent


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1000, "KIB": 1024, "MB": 1000**2, "MIB": 1024**2, "GB": 1000**3, "GIB": 1024**3}


def parse_size(value: str | int) -> int:
    """Bytes in a Supabase config size such as ``"5MiB"`` or ``"50MB"``."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ConfigurationError(f"not a size: {value!r} (expected e.g. 5MiB)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "B").upper()]


class BucketConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] = ()


class LocalConfig(BaseModel):
    """The parts of ``supabase/config.toml`` carbook uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    project_id: str = "carbook"
    api_port: int = 54321
    db_port: int = 54322
    db_major_version: int = 15
    jwt_expiry: int = 3600
    enable_signup: bool = True
    enable_confirmations: bool = False
    minimum_password_length: int = 6
    site_url: str = "http://127.0.0.1:3000"
    api_schemas: tuple[str, ...] = ("public",)
    api_extra_search_path: tuple[str, ...] = ("public", "extensions")
    api_max_rows: int = 1000
    storage_file_size_limit: int = 50 * 1024**2
    buckets: tuple[BucketConfig, ...] = ()

    def bucket(self, name: str) -> BucketConfig:
        for b in self.buckets:
            if b.name == name:
                return b
        raise ConfigurationError(f"bucket {name!r} is not configured in supabase/config.toml")


def load_local_config(path: Path | None = None) -> LocalConfig:
    """Read ``supabase/config.toml`` (carbook's own unless ``path`` is given).

    Raises:
        ConfigurationError: the file is missing or not valid TOML.
    """
    path = path or supabase_dir() / "config.toml"
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    api, db, auth, storage = (raw.get(k, {}) for k in ("api", "db", "auth", "storage"))
    email = auth.get("email", {})
    buckets = tuple(
        BucketConfig(
            name=name,
            public=bool(b.get("public", False)),
            file_size_limit=parse_size(b["file_size_limit"]) if "file_size_limit" in b else None,
            allowed_mime_types=tuple(b.get("allowed_mime_types", ())),
        )
        for name, b in storage.get("buckets", {}).items()
    )
    return LocalConfig(
        project_id=raw.get("project_id", "carbook"),
        api_port=api.get("port", 54321),
        db_port=db.get("port", 54322),
        db_major_version=db.get("major_version", 15),
        jwt_expiry=auth.get("jwt_expiry", 3600),
        enable_signup=auth.get("enable_signup", True) and email.get("enable_signup", True),
        enable_confirmations=email.get("enable_confirmations", False),
        minimum_password_length=auth.get("minimum_password_length", 6),
        site_url=auth.get("site_url", "http://127.0.0.1:3000"),
        api_schemas=tuple(api.get("schemas", ("public",))),
        api_extra_search_path=tuple(api.get("extra_search_path", ("public", "extensions"))),
        api_max_rows=api.get("max_rows", 1000),
        storage_file_size_limit=parse_size(storage.get("file_size_limit", "50MiB")),
        buckets=buckets,
    )


def default_db_url(explicit: str | None = None) -> str:
    """The database URL: the argument, else ``SUPABASE_DB_URL``, else the local stack's."""
    if explicit:
        return explicit
    env = os.environ.get("SUPABASE_DB_URL") or os.environ.get("CARBOOK_DB_URL")
    if env:
        return env
    return f"postgresql://postgres:postgres@127.0.0.1:{load_local_config().db_port}/postgres"
