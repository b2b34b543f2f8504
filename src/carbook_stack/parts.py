"""The stack's processes, one class each: PostgREST, the Python app (Auth and Storage) and
nginx. A part knows its pid file, its log, how to launch itself and how to tell that it
runs and answers; ``LocalStack`` only decides which to start, in what order.

PostgreSQL is a part too, in ``local_postgres`` (``LocalPostgres``): it has a data folder
and a cluster to make, not just a process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import httpx

from .errors import StackStartError
from .local_postgres import free_port, port_in_use
from .nginx import command as nginx_command
from .nginx import write_config
from .processes import kill_orphans, pid_alive, terminate
from .settings import StackSettings
from .status import PartStatus
from .tools import ensure_postgrest

__all__ = ["App", "Nginx", "Part", "PostgREST", "Realtime"]


#: Open files a part may hold: nginx takes two per WebSocket (the client's and Realtime's),
#: Realtime one. The usual default soft limit, 1024, made nginx refuse the ~500th of 1,000
#: watchers with a 500 (the fan-out benchmark, docs/benchmarks.md); the hard limit allows more.
OPEN_FILES = 65536


def _raise_open_files_limit() -> None:
    """The soft limit on open files up to ``OPEN_FILES`` (never past the hard limit), here
    where the parts are spawned: they inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Part:
    """One detached process of the stack, found again by its pid file."""

    #: The part's name: in `stack status`, and its pid and log file names.
    name: ClassVar[str]
    #: A word its command line holds: a pid file that outlived its process (a reboot) may
    #: name anyone's process now, and that one is never signalled.
    marker: ClassVar[str]
    #: The part's pid file and command-line word under an earlier carbook, where they
    #: differ: a stack that version started is still stopped by this one after an upgrade.
    former: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(
        self,
        settings: StackSettings,
        *,
        save: Callable[[], None],
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        #: Writes stack.json: what the part's ports are before it starts, for whoever reads it.
        self.save = save
        self.progress = progress

    # Where it is --------------------------------------------------------------------
    @property
    def pidfile(self) -> Path:
        return self.settings.state_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        """Where it serves, for `stack status` ("" before it ever started)."""
        raise NotImplementedError

    def recorded_pid(self) -> int | None:
        """The pid in the part's pid file, whether or not that process still runs."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """The part's pid, if that process is still ours."""
        pid = self.recorded_pid()
        if pid is None:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return pid if os.name != "posix" or not Path("/proc").is_dir() else None
        # Empty while the process is still being exec'd (or a zombie): not someone else's.
        return pid if not cmdline or self.marker in cmdline else None

    def running(self) -> bool:
        return pid_alive(self.pid())

    # Is it well ---------------------------------------------------------------------
    def health_url(self) -> str | None:
        """The URL that answers 200 when the part serves (None: it has no port yet)."""
        raise NotImplementedError

    def health_headers(self) -> dict[str, str] | None:
        return None

    def healthy(self, patient: bool = False) -> bool:
        """Its process runs and its health URL answers 200.

        ``patient``: a running process that does not answer in time (busy, not dead) is
        asked twice more before it counts as dead, so `start` does not restart a part
        that is merely slow on a loaded machine.
        """
        url = self.health_url()
        if not url or not self.running():
            return False
        for _ in range(3 if patient else 1):
            try:
                return httpx.get(url, headers=self.health_headers(), timeout=2.0).status_code == 200
            except httpx.TimeoutException:
                continue
            except httpx.HTTPError:
                return False
        return False

    def recovers(self, timeout: float = 10.0) -> bool:
        """A part that runs but does not answer (its database was just restarted) gets
        ``timeout`` seconds to heal by itself before `start` restarts it: a restart would
        refuse the connections of every caller in between."""
        if not self.running():
            return False
        self.nudge()
        with contextlib.suppress(StackStartError):
            self.wait(timeout=timeout)
            return True
        return False

    def nudge(self) -> None:
        """Ask a running part to reconnect now (default: nothing to ask, it retries alone)."""

    def status(self) -> PartStatus:
        running = self.running()
        return PartStatus(
            name=self.name,
            running=running,
            healthy=running and self.healthy(),
            url=self.url,
            pid=self.pid() if running else None,
            log=self.log,
        )

    # Start and stop -----------------------------------------------------------------
    def start(self) -> None:
        """(Re)start it: a running one is stopped first. Returns once it is healthy.

        Raises:
            StackStartError: it did not become healthy (names its log).
        """
        raise NotImplementedError

    def stop(self) -> None:
        terminate(self.pid())
        self.pidfile.unlink(missing_ok=True)
        terminate(self.former_pid())
        for name, _ in self.former:
            (self.settings.state_dir / name).unlink(missing_ok=True)

    def former_pid(self) -> int | None:
        """The pid of this part as an earlier carbook started it, if that process runs:
        its command line must name the old marker (a stale pid file may name a kernel
        thread now, whose command line is empty)."""
        for name, marker in self.former:
            try:
                pid = int((self.settings.state_dir / name).read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if marker.encode() in cmdline and pid_alive(pid):
                return pid
        return None

    def spawn(self, cmd: list[str], env: dict[str, str]) -> int:
        _raise_open_files_limit()
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # detached: survives the CLI, stopped as a group
                cwd=self.settings.state_dir,
            )
        self.pidfile.write_text(str(proc.pid))
        return proc.pid

    def wait(self, check: Callable[[], bool] | None = None, timeout: float = 30.0) -> None:
        """Until ``check`` (default: healthy) holds; its process dying ends the wait early.

        Raises:
            StackStartError: it did not, naming the log and quoting its end.
        """
        check = check or self.healthy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not self.running():
                break
            time.sleep(0.05)
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.log.read_text(errors="replace")[-1500:]
        raise StackStartError(f"{self.name} did not become healthy", hint=f"see {self.log}", detail=tail)

    def _claim_port(self, field: str) -> None:
        """Keep the port in ``settings.<field>`` (what nginx and stack.json already name),
        or take a free one when it has none or the port is taken."""
        s = self.settings
        port = getattr(s, field)
        if not port or port_in_use(port, s.host):
            setattr(s, field, free_port(avoid=self._taken_ports()))

    def _launch_module(self) -> None:
        """``python -m <marker> stack.json`` (the app's and Realtime's way to run), once
        the settings it reads, its port included, are saved; returns when it is healthy."""
        self.save()
        state_file = self.settings.state_dir / "stack.json"
        self.spawn([sys.executable, "-m", self.marker, str(state_file)], dict(os.environ))
        self.wait()

    def _taken_ports(self) -> set[int]:
        s = self.settings
        ports = (
            s.api_port,
            s.db_port,
            s.postgrest_port,
            s.postgrest_admin_port,
            s.app_port,
            s.realtime_port,
            s.realtime_api_port,
        )
        return {p for p in ports if p}


class PostgREST(Part):
    """The real PostgREST 12 binary, on an internal port (nginx sends ``/rest/v1`` to it)."""

    name = "postgrest"
    marker = "postgrest"

    @property
    def url(self) -> str:
        return self.settings.postgrest_url if self.settings.postgrest_port else ""

    def health_url(self) -> str | None:
        s = self.settings
        return f"http://{s.host}:{s.postgrest_admin_port}/ready" if s.postgrest_admin_port else None

    def serving(self) -> bool:
        """It answers requests, several in a row: ``/ready`` can say yes before its schema
        cache is loaded."""
        s = self.settings
        headers = {"Authorization": f"Bearer {s.anon_key}"}
        try:
            with httpx.Client(timeout=2.0) as client:
                return all(
                    client.get(f"{s.postgrest_url}/", headers=headers).status_code == 200 for _ in range(5)
                )
        except httpx.HTTPError:
            return False

    def nudge(self) -> None:
        # SIGUSR1: reload the schema cache, which reconnects at once instead of at the end
        # of PostgREST's own back-off (up to 32 s).
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGUSR1)

    def recovers(self, timeout: float = 10.0) -> bool:
        return super().recovers(timeout) and self.serving()

    def start(self) -> None:
        binary = ensure_postgrest(self.progress)
        s = self.settings
        self.stop()
        # Keep the ports nginx already proxies to; move only if taken.
        self._claim_port("postgrest_port")
        self._claim_port("postgrest_admin_port")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGRST_DB_URI": f"postgresql://authenticator:postgres@{s.host}:{s.db_port}/postgres",
            "PGRST_DB_SCHEMAS": ",".join(s.api_schemas),
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_DB_EXTRA_SEARCH_PATH": ",".join(s.api_extra_search_path),
            "PGRST_DB_POOL": str(s.postgrest_pool),
            "PGRST_DB_MAX_ROWS": str(s.api_max_rows),
            "PGRST_DB_CHANNEL_ENABLED": "true",
            # A JWK set: the signing keys' public halves (user tokens, ES256) and the JWT
            # secret as an `oct` key (the legacy HS256 keys).
            "PGRST_JWT_SECRET": s.keys().postgrest_secret(),
            "PGRST_SERVER_HOST": s.host,
            "PGRST_SERVER_PORT": str(s.postgrest_port),
            "PGRST_ADMIN_SERVER_PORT": str(s.postgrest_admin_port),
            "PGRST_LOG_LEVEL": "error",
        }
        self.spawn([str(binary)], env)
        self.wait()


class App(Part):
    """The Python app (Auth and Storage, ``carbook_stack.app``), on an internal port
    behind nginx. It reads its settings from stack.json."""

    name = "app"
    marker = "carbook_stack.app"
    # Before nginx took the name, the app was "the gateway" (``python -m carbook_stack.gateway``).
    former = (("gateway.pid", "carbook_stack.gateway"),)

    @property
    def url(self) -> str:
        s = self.settings
        return f"http://{s.host}:{s.app_port}" if s.app_port else ""

    def health_url(self) -> str | None:
        s = self.settings
        return f"http://{s.host}:{s.app_port}/auth/v1/health" if s.app_port else None

    def health_headers(self) -> dict[str, str] | None:
        return {"apikey": self.settings.anon_key}

    def start(self) -> None:
        # Imported here: the supervisor needs the Storage app's code only for this.
        from .storage.housekeeping import clean_storage

        s = self.settings
        self.stop()
        # No upload is in flight now: what a killed app left behind can go.
        line = clean_storage(s)
        if line:
            with self.log.open("a") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
            if self.progress is not None:
                self.progress(line)
        self._claim_port("app_port")
        self._launch_module()


class Realtime(Part):
    """The Realtime service (``carbook_stack.realtime``): Phoenix channels over WebSocket on
    an internal port, behind nginx at ``/realtime/v1/websocket``. Needs the database up;
    it reads its settings from stack.json."""

    name = "realtime"
    marker = "carbook_stack.realtime"

    @property
    def url(self) -> str:
        s = self.settings
        return f"ws://{s.host}:{s.realtime_port}/realtime/v1/websocket" if s.realtime_port else ""

    def health_url(self) -> str | None:
        s = self.settings
        return f"http://{s.host}:{s.realtime_port}/health" if s.realtime_port else None

    def start(self) -> None:
        self.stop()
        self._claim_port("realtime_port")
        self._claim_port("realtime_api_port")
        self._launch_module()


class Nginx(Part):
    """nginx on the API port, in front of PostgREST and the app, as Kong is for
    ``supabase start``. Its config names the ports behind it."""

    name = "nginx"
    marker = "nginx"

    @property
    def url(self) -> str:
        return self.settings.api_url

    def health_url(self) -> str | None:
        s = self.settings
        return f"http://{s.host}:{s.nginx_status_port}/" if s.nginx_status_port else None

    def stop(self) -> None:
        leader = self.recorded_pid()
        terminate(self.pid())
        # Its workers outlive a killed master and keep the port.
        kill_orphans(leader, "nginx")
        self.pidfile.unlink(missing_ok=True)

    def reload(self) -> None:
        """The parts behind it were restarted: a running nginx reads its config again
        (SIGHUP, only when the ports it names changed) and keeps the API port open all the
        while, so no caller is refused; one that is not running is started."""
        pid = self.pid()
        if pid is None or not self.healthy(patient=True):
            self.start()
            return
        path = self.settings.state_dir / "nginx" / "nginx.conf"
        before = path.read_text() if path.exists() else None
        if write_config(self.settings).read_text() == before:
            return
        os.kill(pid, signal.SIGHUP)
        self.wait()

    def start(self) -> None:
        s = self.settings
        terminate(self.pid())
        kill_orphans(self.recorded_pid(), "nginx")
        if port_in_use(s.api_port, s.host):
            raise StackStartError(
                f"port {s.api_port} is already in use",
                hint="another stack (or `supabase start`) runs there; stop it or change [api].port",
            )
        self._claim_port("nginx_status_port")
        config = write_config(s)
        self.save()
        self.spawn(nginx_command(s, config), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        self.wait()
