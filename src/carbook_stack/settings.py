"""The one settings object every part of the local stack reads: written by the supervisor
to ``.carbook/stack.json``, read back by the gateway process (``load_settings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from carbook_sdk.config import (
    LOCAL_ANON_KEY,
    LOCAL_JWT_SECRET,
    LOCAL_PUBLISHABLE_KEY,
    LOCAL_SECRET_KEY,
    LOCAL_SERVICE_ROLE_KEY,
    BucketConfig,
    LocalConfig,
    load_local_config,
    read_stack_state,
)
from carbook_sdk.errors import ConfigurationError

from .tokens import LOCAL_SIGNING_KEY, KeySet, SigningKeyError, load_signing_keys

__all__ = ["CONFIG_KEYS", "StackSettings", "load_settings"]


#: Settings that come from ``supabase/config.toml``, by the key that sets them.
CONFIG_KEYS: dict[str, str] = {
    "api_port": "[api].port",
    "db_port": "[db].port",
    "schemas": "[api].schemas",
    "extra_search_path": "[api].extra_search_path",
    "max_rows": "[api].max_rows",
    "jwt_expiry": "[auth].jwt_expiry",
    "enable_signup": "[auth].enable_signup",
    "enable_confirmations": "[auth.email].enable_confirmations",
    "enable_anonymous_sign_ins": "[auth].enable_anonymous_sign_ins",
    "minimum_password_length": "[auth].minimum_password_length",
    "storage_file_size_limit": "[storage].file_size_limit",
    "signing_keys": "[auth].signing_keys_path",
    "buckets": "[storage.buckets]",
    "realtime_enabled": "[realtime].enabled",
}


class StackSettings(BaseModel):
    """Everything a stack needs to know; written to ``stack.json`` for the gateway."""

    model_config = ConfigDict(extra="ignore")

    state_dir: Path
    #: The config.toml these settings were read from; None for a stack built in code
    #: (tests, benchmarks), which keeps its own settings whatever config.toml says.
    config_file: Path | None = None
    host: str = "127.0.0.1"
    api_port: int = 54321
    db_port: int = 54322
    postgrest_port: int = 0
    postgrest_admin_port: int = 0
    #: The Python app (Auth and Storage), behind nginx.
    app_port: int = 0
    #: nginx's own health answer, for the supervisor.
    nginx_status_port: int = 0
    #: The Realtime service (WebSocket), behind nginx at /realtime/v1.
    realtime_port: int = 0
    realtime_enabled: bool = True
    jwt_secret: str = LOCAL_JWT_SECRET
    #: Today's keys; the gateway turns them into the legacy JWTs below for the services.
    publishable_key: str = LOCAL_PUBLISHABLE_KEY
    secret_key: str = LOCAL_SECRET_KEY
    #: The legacy keys: HS256 JWTs signed with ``jwt_secret``.
    anon_key: str = LOCAL_ANON_KEY
    service_role_key: str = LOCAL_SERVICE_ROLE_KEY
    #: Private JWKs user tokens are signed with (the first) and verified by.
    signing_keys: tuple[dict[str, Any], ...] = (LOCAL_SIGNING_KEY,)
    jwt_expiry: int = 3600
    enable_signup: bool = True
    enable_confirmations: bool = False
    enable_anonymous_sign_ins: bool = False
    minimum_password_length: int = 6
    storage_file_size_limit: int = 50 * 1024 * 1024
    schemas: tuple[str, ...] = ("public",)
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    max_rows: int = 1000
    postgrest_pool: int = 10
    #: ``[storage.buckets.*]``: applied to ``storage.buckets`` at every start.
    buckets: tuple[BucketConfig, ...] = ()

    def config_changes(self, other: StackSettings) -> list[str]:
        """The ``config.toml`` keys whose values differ between two settings."""
        return [key for field, key in CONFIG_KEYS.items() if getattr(self, field) != getattr(other, field)]

    def keys(self) -> KeySet:
        """The key set tokens are signed and verified with."""
        return KeySet.of(self.jwt_secret, self.signing_keys)

    def key_jwts(self) -> dict[str, str]:
        """Each API key the stack accepts, with the JWT it stands for behind the gateway."""
        return {
            self.publishable_key: self.anon_key,
            self.secret_key: self.service_role_key,
            self.anon_key: self.anon_key,
            self.service_role_key: self.service_role_key,
        }

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres:postgres@{self.host}:{self.db_port}/postgres"

    @property
    def postgrest_url(self) -> str:
        return f"http://{self.host}:{self.postgrest_port}"

    @property
    def storage_dir(self) -> Path:
        return self.state_dir / "storage"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @classmethod
    def from_config(
        cls, state_dir: Path, config: LocalConfig | None = None, **overrides: Any
    ) -> StackSettings:
        cfg = config or load_local_config()
        values: dict[str, Any] = {
            "state_dir": state_dir,
            "api_port": cfg.api_port,
            "db_port": cfg.db_port,
            "jwt_expiry": cfg.jwt_expiry,
            "enable_signup": cfg.enable_signup,
            "enable_confirmations": cfg.enable_confirmations,
            "enable_anonymous_sign_ins": cfg.enable_anonymous_sign_ins,
            "minimum_password_length": cfg.minimum_password_length,
            "storage_file_size_limit": cfg.storage_file_size_limit,
            "schemas": cfg.api_schemas,
            "extra_search_path": cfg.api_extra_search_path,
            "max_rows": cfg.api_max_rows,
            "buckets": cfg.buckets,
            "realtime_enabled": cfg.realtime_enabled,
        }
        if cfg.signing_keys_path is not None:
            try:
                values["signing_keys"] = load_signing_keys(cfg.signing_keys_path)
            except SigningKeyError as exc:
                raise ConfigurationError(
                    f"[auth] signing_keys_path: {exc}",
                    hint="point it at a JSON array of private JWKs (`supabase gen signing-key` writes one)",
                ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def load_settings(path: Path) -> StackSettings:
    """The settings a stack recorded in ``path`` (its ``stack.json``).

    Raises:
        ConfigurationError: the file is missing or unreadable.
    """
    path = Path(path)
    state = read_stack_state(path.parent) if path.name == "stack.json" else None
    if state is None:
        raise ConfigurationError(f"cannot read the stack's settings from {path}")
    return StackSettings.model_validate(state)
