"""Where a signed-in session is kept between runs.

Memory (the default) keeps it for the life of the client. ``FileSessionStore`` keeps it
in a JSON file readable by its owner only (mode 0600): the CLI's choice.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from supabase_auth import AsyncSupportedStorage, SyncSupportedStorage

from .errors import ConfigurationError

__all__ = ["AsyncFileSessionStore", "FileSessionStore"]


class _JsonFile:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def writable(self) -> None:
        """Check the session can be saved here, before anything asks a server for one.

        Raises:
            ConfigurationError: the folder cannot be made or written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, probe = tempfile.mkstemp(dir=self.path.parent, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise self._unsaved(exc) from None

    def _unsaved(self, exc: OSError) -> ConfigurationError:
        # Python's words ("[Errno 20] Not a directory: …") told a person neither what nor where.
        blocked = next((p for p in (self.path.parent, *self.path.parent.parents) if p.exists()), None)
        why = (
            f"{blocked} is a file"
            if blocked is not None and not blocked.is_dir()
            else (exc.strerror or str(exc)).lower()
        )
        return ConfigurationError(
            f"cannot save the session in {self.path.parent}: {why}",
            hint="set CARBOOK_CONFIG_DIR to a folder you can write (the SDK: pass another session_store)",
        )

    def write(self, data: dict[str, str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".session-")
        except OSError as exc:
            raise self._unsaved(exc) from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def set(self, key: str, value: str) -> None:
        data = self.read()
        data[key] = value
        self.write(data)

    def remove(self, key: str) -> None:
        data = self.read()
        if data.pop(key, None) is not None:
            if data:
                self.write(data)
            else:
                self.path.unlink(missing_ok=True)


class FileSessionStore(SyncSupportedStorage):
    """Session storage in a 0600 JSON file (for the sync client)."""

    def __init__(self, path: Path | str) -> None:
        self._file = _JsonFile(path)

    @property
    def path(self) -> Path:
        return self._file.path

    def check_writable(self) -> None:
        """Raise ``ConfigurationError`` now if a session could not be saved here."""
        self._file.writable()

    def get_item(self, key: str) -> str | None:
        return self._file.read().get(key)

    def set_item(self, key: str, value: str) -> None:
        self._file.set(key, value)

    def remove_item(self, key: str) -> None:
        self._file.remove(key)


class AsyncFileSessionStore(AsyncSupportedStorage):
    """Session storage in a 0600 JSON file (for the async client)."""

    def __init__(self, path: Path | str) -> None:
        self._file = _JsonFile(path)

    @property
    def path(self) -> Path:
        return self._file.path

    async def get_item(self, key: str) -> str | None:
        return self._file.read().get(key)

    async def set_item(self, key: str, value: str) -> None:
        self._file.set(key, value)

    async def remove_item(self, key: str) -> None:
        self._file.remove(key)
