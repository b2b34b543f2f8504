"""The one settings object every part of the local stack reads: written by the supervisor
to ``.carbook/stack.json``, read back by the gateway process (``load_settings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from carbook_sdk.config import (
    LOCAL_ANON_KEY,
    LOCAL_JWT_SECRET,
    LOCAL_SERVICE_ROLE_KEY,
    LocalConfig,
    load_local_config,
    read_stack_state,
)
from carbook_sdk.errors import ConfigurationError

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
    jwt_secret: str = LOCAL_JWT_SECRET
    anon_key: str = LOCAL_ANON_KEY
    service_role_key: str = LOCAL_SERVICE_ROLE_KEY
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

    def config_changes(self, other: StackSettings) -> list[str]:
        """The ``config.toml`` keys whose values differ between two settings."""
        return [key for field, key in CONFIG_KEYS.items() if getattr(self, field) != getattr(other, field)]

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
        }
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
