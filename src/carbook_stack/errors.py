"""The local stack's own errors (the SDK's tree: both are ``CarbookError``)."""

from __future__ import annotations

from typing import Any

from carbook_sdk.errors import CarbookError, ConfigurationError

__all__ = ["StackConfigChangedError", "StackStartError"]


class StackStartError(CarbookError):
    """A part of the local stack did not start."""

    code = "stack_start_failed"


class StackConfigChangedError(ConfigurationError):
    """The running stack was started with another configuration."""

    code = "stack_config_changed"

    def __init__(self, message: str | None = None, *, changed: list[str], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.changed = changed
