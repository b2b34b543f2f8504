"""The one settings object every part of the local stack reads: written by the supervisor
to ``.carbook/stack.json``, read back by the app process (``load_settings``).

Its fields are the SDK's ``StackState`` (config.toml's settings, declared once in
``LocalConfig``, and the ports and keys), plus the private signing keys only the stack uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carbook_sdk.config import (
    CONFIG_TABLE,
    LocalConfig,
    StackState,
    load_local_config,
    read_stack_state,
)
from carbook_sdk.errors import ConfigurationError

from .tokens import LOCAL_SIGNING_KEY, KeySet, SigningKeyError, load_signing_keys

__all__ = ["CONFIG_KEYS", "StackSettings", "load_settings"]


#: Settings that come from ``supabase/config.toml``, by the stack setting → the key that
#: sets it (from the SDK's one table).
CONFIG_KEYS: dict[str, str] = {key.decides or key.field: key.label for key in CONFIG_TABLE}


class StackSettings(StackState):
    """Everything a stack needs to know; written to ``stack.json`` for the app."""

    #: Private JWKs user tokens are signed with (the first) and verified by.
    signing_keys: tuple[dict[str, Any], ...] = (LOCAL_SIGNING_KEY,)

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
        """Settings from config.toml's (``config``, else carbook's own), ``overrides`` winning."""
        cfg = config or load_local_config()
        values: dict[str, Any] = {**cfg.model_dump(), "state_dir": state_dir}
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
    state = read_stack_state(path.parent, StackSettings) if path.name == "stack.json" else None
    if state is None:
        raise ConfigurationError(f"cannot read the stack's settings from {path}")
    return state
