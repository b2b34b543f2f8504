"""A private PostgreSQL cluster: initdb into a folder, start on a port, stop.

Used by the test suite and by the local stack. PostgreSQL refuses to run as root, so
when called as root the server runs as an unprivileged user (``postgres`` when it
exists, else ``nobody``; ``CARBOOK_PG_USER`` overrides) that owns the data folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from carbook_sdk.errors import ConfigurationError, PostgresNotFoundError, PostgresStartError

from .processes import is_zombie, pid_alive

__all__ = [
    "LocalPostgres",
    "cluster_dir",
    "find_pg_bindir",
    "free_port",
]

_REQUIRED = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`; "
    "macOS: `brew install postgresql@15`) or set CARBOOK_PG_BINDIR to its bin folder"
)


def _has_all(folder: Path) -> bool:
    return all((folder / name).is_file() and os.access(folder / name, os.X_OK) for name in _REQUIRED)


def _version_key(p: Path) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in p.parent.name.split("."))
    except ValueError:
        return (0,)


def find_pg_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres.

    Looked for in order: ``CARBOOK_PG_BINDIR``; ``pg_config --bindir``; next to
    ``initdb`` on PATH (following symlinks); the Debian layout
    ``/usr/lib/postgresql/<version>/bin``, newest first.

    Raises:
        PostgresNotFoundError: none of those holds all three programs.
    """
    candidates: list[Path] = []
    env = os.environ.get("CARBOOK_PG_BINDIR")
    if env:
        if not _has_all(Path(env)):
            raise PostgresNotFoundError(
                f"CARBOOK_PG_BINDIR={env} does not contain {', '.join(_REQUIRED)}", hint=INSTALL_HINT
            )
        return Path(env)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates.extend(debian)
    for folder in candidates:
        if _has_all(folder):
            return folder
    raise PostgresNotFoundError(hint=INSTALL_HINT)


def free_port(host: str = "127.0.0.1", avoid: Collection[int | None] = ()) -> int:
    """A TCP port that nothing listens on right now, and not one of ``avoid``.

    ``avoid`` holds ports already chosen but not yet listened on: the kernel may offer
    a just-closed port again.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _server_user() -> str | None:
    """The user the server runs as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("CARBOOK_PG_USER")
    for name in [wanted] if wanted else ["postgres", "nobody"]:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ConfigurationError(
        "PostgreSQL cannot run as root and no unprivileged user was found",
        hint="create a `postgres` user or set CARBOOK_PG_USER",
    )


def _reachable_by(user: str, folder: Path) -> bool:
    """Whether ``user`` can get into ``folder`` (or, while it does not exist yet, into its
    nearest existing parent) through every folder above it."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
    )
    if runuser is None:
        return True  # cannot tell: the data folder's own check says it clearly, if need be
    result = subprocess.run(
        [runuser, "-u", user, "--", "test", "-x", str(probe)], capture_output=True, cwd="/"
    )
    return result.returncode == 0


def cluster_dir(state_dir: Path) -> Path:
    """Where a stack's PostgreSQL cluster lives: ``<state_dir>/db``; but when the server
    must run as another user (we are root) who cannot reach the state folder (a project
    under ``/root``, in a ``mktemp -d`` folder), a folder that user owns, keyed by the
    state folder: its home's ``carbook/``, else ``/var/tmp``. A cluster already made in
    either place stays where it is."""
    state_dir = Path(state_dir).absolute()
    default = state_dir / "db"
    user = _server_user()
    if user is None or (default / "pgdata" / "PG_VERSION").is_file():
        return default
    key = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    entry = pwd.getpwnam(user)
    home = Path(entry.pw_dir)
    base = home / "carbook" if home.is_dir() and home.stat().st_uid == entry.pw_uid else Path("/var/tmp")
    elsewhere = base / f"carbook-db-{key}"
    if (elsewhere / "pgdata" / "PG_VERSION").is_file() or not _reachable_by(user, state_dir):
        return elsewhere
    return default


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir``, listening on ``host:port``.

    ``fast=True`` turns off durability (fsync, full-page writes): right for tests and
    benchmarks' throwaway clusters, wrong for data you keep.
    """

    data_dir: Path
    port: int = 54322
    host: str = "127.0.0.1"
    superuser: str = "postgres"
    password: str = "postgres"
    max_connections: int = 300
    fast: bool = False
    #: ``logical`` lets Realtime decode the changes (postgres_changes); ``replica`` is
    #: PostgreSQL's default, for a cluster that needs no decoding.
    wal_level: str = "logical"
    bindir: Path = field(default_factory=find_pg_bindir)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.run_as = _server_user()

    # Paths ---------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}:{self.password}@{self.host}:{self.port}/{dbname}"

    # Lifecycle -----------------------------------------------------------------------
    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        # cwd: the server user may not be allowed into ours (for example /root).
        return subprocess.run(cmd, capture_output=True, text=True, cwd=self.data_dir)

    def _cmd(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / program), *args]
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def _own(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """The server user must be able to reach the data folder through its parents."""
        if not self.run_as:
            return
        probe = self._run(["runuser", "-u", self.run_as, "--", "test", "-w", str(self.data_dir)])
        if probe.returncode != 0:
            raise ConfigurationError(
                f"the PostgreSQL user {self.run_as!r} cannot write to {self.data_dir}",
                hint="put the data folder where that user can reach it (not under /root)",
            )

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the cluster (``initdb``) unless it exists."""
        if self.initialized:
            return
        if self.run_as and not self.data_dir.parent.exists():
            # A folder of the server user's own (see cluster_dir): theirs from the top.
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._own(self.data_dir.parent)
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._own(folder)
        self._check_reachable()
        pwfile = self.data_dir / ".pwfile"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        try:
            result = self._run(
                self._cmd(
                    "initdb",
                    "-D",
                    str(self.pgdata),
                    "-U",
                    self.superuser,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                )
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PostgresStartError("initdb failed", detail=(result.stderr or result.stdout).strip()[-2000:])

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"

    def postmaster_pid(self) -> int | None:
        """The pid ``postmaster.pid`` names, or None (no file, unreadable)."""
        try:
            first = self.pid_file.read_text().split("\n", 1)[0].strip()
            return int(first) if first else None
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        """Whether this cluster's postmaster runs. A pid file whose process is gone or a
        zombie (a killed postmaster nobody has reaped: ``pg_ctl status`` still says
        "running" for it) does not count."""
        if not self.initialized:
            return False
        if not pid_alive(self.postmaster_pid()):
            return False
        result = self._run(self._cmd("pg_ctl", "-D", str(self.pgdata), "status"))
        return result.returncode == 0

    def accepts_connections(self, timeout: float = 2.0) -> bool:
        """Whether the server answers a query now (not only that its process exists)."""
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=max(1, int(timeout))) as conn:
                conn.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def _clear_stale_pid_file(self, timeout: float = 10.0) -> bool:
        """Remove ``postmaster.pid`` (and the socket's lock file) when its postmaster is
        dead (killed, crashed), after its children are gone: PostgreSQL refuses to start
        over a lock file whose pid still exists (a zombie does) and over shared memory old
        backends still hold. True when a stale file was removed."""
        pid = self.postmaster_pid()
        if pid is None or pid_alive(pid):
            return False
        deadline = time.monotonic() + timeout
        while self._children_of_cluster() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        # The socket's lock file names the same dead pid, and is refused the same way.
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(OSError, ValueError):
                if int(lock.read_text().split("\n", 1)[0]) == pid:
                    lock.unlink()
                    Path(str(lock).removesuffix(".lock")).unlink(missing_ok=True)
        return True

    def _children_of_cluster(self) -> list[int]:
        """Live processes of this cluster's old server (backends and helpers that outlive a
        killed postmaster for a moment), found by their command line."""
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if not cmdline.startswith(b"postgres: ") or is_zombie(int(entry.name)):
                continue
            # A backend's environment is not readable; its working directory is the cluster's.
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")) == self.pgdata:
                    found.append(int(entry.name))
        return found

    def start(self, timeout: float = 30) -> None:
        """Initialise if needed and start the server; wait until it accepts connections.

        Raises:
            PostgresStartError: the port is taken or the server did not come up.
        """
        self.init()
        if self.is_running():
            return
        self._clear_stale_pid_file()
        if port_in_use(self.port, self.host):
            raise PostgresStartError(
                f"port {self.port} on {self.host} is already in use",
                hint="stop what listens there, or change [db].port in supabase/config.toml",
            )
        options = [
            f"-p {self.port}",
            f"-k {self.socket_dir}",
            f"-c listen_addresses={self.host}",
            f"-c max_connections={self.max_connections}",
            # Realtime's postgres_changes read the changes by logical decoding (wal2json),
            # as hosted Realtime does; it needs this level, set only at server start.
            f"-c wal_level={self.wal_level}",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
            # Logical decoding reads only flushed WAL: without synchronous commits, flush
            # often, or a change reaches postgres_changes subscribers up to ~0.6 s late.
            options += ["-c wal_writer_delay=10ms"]
        self.log_file.touch()
        self._own(self.log_file)
        result = self._run(
            self._cmd(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-o",
                " ".join(options),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            )
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise PostgresStartError(
                f"PostgreSQL did not start on port {self.port}",
                detail=(result.stderr.strip() + "\n" + tail).strip(),
                hint=f"see {self.log_file}",
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_in_use(self.port, self.host):
                return
            time.sleep(0.05)
        raise PostgresStartError(f"PostgreSQL did not accept connections on port {self.port}")

    def stop(self, timeout: float = 30) -> None:
        """Stop the server (fast shutdown, then immediate if it lingers)."""
        if not self.is_running():
            return
        for mode in ("fast", "immediate"):
            result = self._run(
                self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", str(int(timeout)), "stop")
            )
            if result.returncode == 0 or not self.is_running():
                return

    def kill(self) -> None:
        """Stop at once, as a crash would (immediate shutdown: recovery runs on next start)."""
        if self.is_running():
            self._run(self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"))

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
