"""The `carbook` command line: parses, calls carbook_sdk, renders with Rich."""

from .main import app, main

__all__ = ["app", "main"]
