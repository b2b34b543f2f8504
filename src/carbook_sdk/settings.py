"""Client settings: explicit arguments > environment > the local stack's defaults."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY, load_local_config, project_root
from .errors import ConfigurationError

__all__ = ["Settings"]

#: Environment variables per field, most specific first.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "url": ("CARBOOK_URL", "SUPABASE_URL"),
    "anon_key": ("CARBOOK_ANON_KEY", "SUPABASE_ANON_KEY", "SUPABASE_KEY"),
    "service_role_key": ("CARBOOK_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_ROLE_KEY"),
    "db_url": ("CARBOOK_DB_URL", "SUPABASE_DB_URL"),
    "timeout": ("CARBOOK_TIMEOUT",),
}


class Settings(BaseModel):
    """Where the project is and how long to wait for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    anon_key: str = Field(min_length=1)
    service_role_key: str | None = None
    db_url: str | None = None
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
        return value.rstrip("/")

    @classmethod
    def local(cls, state_dir: Path | None = None) -> dict[str, Any]:
        """The local stack's values: its ``stack.json`` when it has run, else config.toml's ports."""
        cfg = load_local_config()
        bucket = next((b for b in cfg.buckets if b.name == "car-images"), None)
        values: dict[str, Any] = {
            "url": f"http://127.0.0.1:{cfg.api_port}",
            "anon_key": LOCAL_ANON_KEY,
            "service_role_key": LOCAL_SERVICE_ROLE_KEY,
            "db_url": f"postgresql://postgres:postgres@127.0.0.1:{cfg.db_port}/postgres",
        }
        if bucket is not None:
            values["image_max_bytes"] = bucket.file_size_limit or values.get("image_max_bytes")
            values["image_types"] = bucket.allowed_mime_types or cls.model_fields["image_types"].default
        state = Path(state_dir) if state_dir else project_root() / ".carbook"
        saved = state / "stack.json"
        if saved.is_file():
            try:
                stack = json.loads(saved.read_text())
                host = stack.get("host", "127.0.0.1")
                values.update(
                    url=f"http://{host}:{stack['api_port']}",
                    anon_key=stack.get("anon_key", LOCAL_ANON_KEY),
                    service_role_key=stack.get("service_role_key", LOCAL_SERVICE_ROLE_KEY),
                    db_url=f"postgresql://postgres:postgres@{host}:{stack['db_port']}/postgres",
                )
            except (ValueError, KeyError, OSError):
                pass  # a broken state file: fall back to config.toml's ports
        return values

    @classmethod
    def resolve(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        use_local_defaults: bool = True,
        **explicit: Any,
    ) -> Settings:
        """Merge explicit arguments (win), ``CARBOOK_*``/``SUPABASE_*`` variables, and the
        local stack's defaults.

        Raises:
            ConfigurationError: a value is missing or invalid, named field by field.
        """
        environ = os.environ if env is None else env
        values: dict[str, Any] = cls.local(state_dir) if use_local_defaults else {}
        from_env = {}
        for name, variables in ENV_VARS.items():
            for var in variables:
                if environ.get(var):
                    from_env[name] = environ[var]
                    break
        local_url = values.get("url")
        given = {k: v for k, v in explicit.items() if v is not None}
        values.update(from_env)
        values.update(given)
        if local_url is not None and not _same_place(values.get("url"), local_url):
            # The local stack's keys and database belong to the local stack's URL only: never
            # send them to another server, and never pair that server with the local database.
            for key in ("anon_key", "service_role_key", "db_url"):
                if key not in from_env and key not in given:
                    values.pop(key, None)
            if "anon_key" not in values:
                raise ConfigurationError(
                    f"no anon key for {values['url']}: the local stack's keys go only to the local stack",
                    hint="set SUPABASE_ANON_KEY (or pass --anon-key / anon_key=)",
                )
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(
                f"invalid carbook settings: {problems}",
                hint="pass it explicitly or set SUPABASE_URL / SUPABASE_ANON_KEY",
            ) from None


def _same_place(url: Any, other: Any) -> bool:
    """Whether two base URLs name the same server (localhost and 127.0.0.1 alike)."""

    def norm(u: Any) -> str:
        text = str(u).strip().rstrip("/").lower()
        return text.replace("://localhost:", "://127.0.0.1:").replace("://localhost/", "://127.0.0.1/")

    return norm(url) == norm(other)
