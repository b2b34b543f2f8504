"""Client settings: explicit arguments > environment > the local stack's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import from_environment, local_stack
from .errors import ConfigurationError

__all__ = ["Settings"]


class Settings(BaseModel):
    """Where the project is and how long to wait for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    #: The project's publishable key (``sb_publishable_…``) or its legacy anon key: what
    #: every request carries as ``apikey``.
    key: str = Field(min_length=1)
    #: The secret key (``sb_secret_…``) or the legacy service_role key: admin calls only.
    secret_key: str | None = None
    db_url: str | None = None
    #: The project's JWT secret, only to verify HS256 access tokens (``as_user``); ES256
    #: tokens are verified against the project's published keys and need none.
    jwt_secret: str | None = None
    #: Seconds for any one HTTP request (connect, read, write).
    timeout: float = Field(default=10.0, gt=0, le=600)
    bucket: str = "car-images"
    #: The bucket's limits (from supabase/config.toml); checked before any upload.
    image_max_bytes: int = 5 * 1024 * 1024
    image_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError:
            raise ValueError(f"not a URL: {value!r}") from None
        if not parts.hostname:
            raise ValueError(f"has no host: {value!r}")
        return value.rstrip("/")

    @classmethod
    def local(cls, state_dir: Path | None = None) -> dict[str, Any]:
        """The local stack's values: its ``stack.json`` when it has run, else config.toml's ports."""
        return local_stack(state_dir)

    @classmethod
    def resolve(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        use_local_defaults: bool = True,
        **explicit: Any,
    ) -> Settings:
        """Merge, in carbook's one order of precedence: explicit arguments > ``CARBOOK_*``
        variables > ``SUPABASE_*`` variables > the local stack's defaults.

        Raises:
            ConfigurationError: a value is missing or invalid, named field by field.
        """
        values: dict[str, Any] = cls.local(state_dir) if use_local_defaults else {}
        from_env: dict[str, Any] = from_environment(env)
        local_url = values.get("url")
        given = {k: v for k, v in explicit.items() if v is not None}
        values.update(from_env)
        values.update(given)
        url = values.get("url")
        if local_url is not None and not _same_place(url, local_url):
            # The local stack's keys and database belong to the local stack's URL only: never
            # send them to another server, and never pair that server with the local database.
            for name in ("key", "secret_key", "db_url", "jwt_secret"):
                if name not in from_env and name not in given:
                    values.pop(name, None)
            # A URL that is no URL is reported with the other fields below, not as a missing key.
            is_url = isinstance(url, str) and url.strip().lower().startswith(("http://", "https://"))
            if "key" not in values and is_url:
                raise ConfigurationError(
                    f"no publishable key for {values['url']}: the local stack's keys go only to the local stack",
                    hint="set SUPABASE_PUBLISHABLE_KEY (the CLI: --publishable-key; the SDK: key=)",
                )
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ConfigurationError(
                f"invalid carbook settings: {problems}",
                hint="pass it explicitly or set SUPABASE_URL / SUPABASE_PUBLISHABLE_KEY",
            ) from None


def _same_place(url: Any, other: Any) -> bool:
    """Whether two base URLs name the same server (localhost and 127.0.0.1 alike)."""

    def norm(u: Any) -> str:
        text = str(u).strip().rstrip("/").lower()
        return text.replace("://localhost:", "://127.0.0.1:").replace("://localhost/", "://127.0.0.1/")

    return norm(url) == norm(other)
