"""Start, stop, inspect and reset the Docker-free local Supabase stack: the supervisor.

Five parts, the same addresses and keys as ``supabase start``:

- PostgreSQL: a private cluster (``LocalPostgres``) on ``[db].port``;
- PostgREST 12: the real binary, on an internal port (``parts.PostgREST``);
- the app: Auth and Storage, one ASGI app on an internal port (``parts.App``);
- Realtime: Phoenix channels over WebSocket on an internal port (``parts.Realtime``,
  ``[realtime] enabled``);
- nginx: the gateway on ``[api].port``, ``/rest/v1`` straight to PostgREST, the rest to
  the app (``parts.Nginx``).

Each part knows how to launch itself and tell that it is well; the supervisor decides
which to start and in what order. State (ports, pids, logs, data) lives in one folder,
``.carbook/`` of the project by default. Every part runs detached from the caller, so
``carbook stack start`` returns and the stack keeps running until ``carbook stack stop``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from carbook_sdk.config import (
    load_local_config,
    project_root,
    read_stack_state,
    supabase_dir,
)
from carbook_sdk.errors import ConfigurationError
from carbook_sdk.ops import Database

from .errors import StackConfigChangedError, StackStartError
from .local_postgres import LocalPostgres, cluster_dir, free_port
from .nginx import find_nginx
from .parts import App, Nginx, Part, PostgREST, Realtime
from .settings import StackSettings
from .status import PartStatus, StackInfo, StackStatus
from .tools import ensure_postgrest

__all__ = [
    "LocalStack",
    "PartStatus",
    "StackConfigChangedError",
    "StackInfo",
    "StackStartError",
    "StackStatus",
]


#: In a project's ``.carbook/``: the state folder its stack was last started with, when
#: that was another (``--state-dir``), so `stack stop` and `stack status` find it.
STATE_POINTER = "state-dir"


@dataclass
class LocalStack:
    """The local stack in ``settings.state_dir``.

    ``LocalStack.default()`` uses the project's ``.carbook/`` and the ports of
    ``supabase/config.toml``; tests build one with their own folder and free ports.
    """

    settings: StackSettings
    fast: bool = False
    #: What the state file says was started last (None: never started, or built in code).
    recorded: StackSettings | None = None
    #: The project's config.toml, read on every start (None for a stack built in code).
    config_file: Path | None = None
    #: Called with a line to show while something slow happens (PostgREST's first install).
    progress: Callable[[str], None] | None = None
    _pg: LocalPostgres | None = field(default=None, init=False, repr=False)

    @classmethod
    def default(cls, state_dir: Path | None = None) -> LocalStack:
        """The project's stack: its configuration from ``supabase/config.toml`` (read now),
        its state in ``.carbook/`` at the project root.

        Raises:
            ConfigurationError: no project here, its config.toml is unreadable, or
                ``state_dir`` is something other than a folder.
        """
        root = project_root()
        state = Path(state_dir or root / ".carbook")
        if state.exists() and not state.is_dir():
            raise ConfigurationError(
                f"the stack's state folder {state} is a file, not a folder",
                hint="pass --state-dir a folder (it is made if missing), or leave it out for the project's .carbook/",
            )
        pointer = root / ".carbook" / STATE_POINTER
        if state_dir is None and not (state / "stack.json").exists() and pointer.is_file():
            # Started with --state-dir: that is where this project's stack lives.
            elsewhere = Path(pointer.read_text().strip())
            if (elsewhere / "stack.json").exists():
                state = elsewhere
        config_file = root / "supabase" / "config.toml"
        try:
            recorded = read_stack_state(state, StackSettings)
        except ConfigurationError:
            recorded = None  # unreadable: config.toml's settings; `start` writes it again
        if recorded is not None:
            recorded.state_dir = state  # the folder may have moved since
        if recorded is not None and recorded.config_file is None:
            return cls(recorded)  # built in code (tests, benchmarks): not config.toml's to change
        settings = StackSettings.from_config(state, load_local_config(config_file), config_file=config_file)
        return cls(settings, recorded=recorded, config_file=config_file)

    def _running_parts(self) -> list[str]:
        running = ["database"] if self.postgres.is_running() else []
        return running + [p.name for p in self.parts(every=True) if p.running() or p.former_pid()]

    def _adopt_running(self) -> None:
        """When parts of a stack run, act on them as they were started; refuse a config
        that changed since (a running stack cannot take it without a restart)."""
        if self.recorded is None:
            return
        running = self._running_parts()
        if not running:
            return  # nothing runs: the configuration in force is config.toml's
        changed = self.recorded.config_changes(self.settings)
        if changed:
            raise StackConfigChangedError(
                f"the stack is running with other settings than {self.config_file or 'config.toml'}: "
                f"{', '.join(changed)} changed",
                changed=changed,
                hint="`carbook stack restart` applies them",
            )
        self.settings = self.recorded
        self._pg = None

    @classmethod
    def ephemeral(cls, state_dir: Path, *, durable: bool = False) -> LocalStack:
        """A stack on free ports in ``state_dir``, for tests and benchmarks.

        Not ``durable`` (the default), its database skips fsync and synchronous commit:
        fast, but a crash loses the last commits. Crash tests ask for ``durable=True``,
        which is what ``carbook stack start`` always runs.
        """
        api_port = free_port()
        settings = StackSettings.from_config(
            state_dir, api_port=api_port, db_port=free_port(avoid={api_port}), postgrest_pool=20
        )
        return cls(settings, fast=not durable)

    # Paths and parts -----------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.settings.state_dir / "stack.json"

    @property
    def _made_marker(self) -> Path:
        """Present once the database is bootstrapped, migrated and seeded."""
        return self.settings.state_dir / "database-made"

    @property
    def postgres(self) -> LocalPostgres:
        if self._pg is None:
            self._pg = LocalPostgres(
                cluster_dir(self.settings.state_dir), port=self.settings.db_port, fast=self.fast
            )
        return self._pg

    @property
    def postgrest(self) -> PostgREST:
        return PostgREST(self.settings, save=self._save, progress=self.progress)

    @property
    def app(self) -> App:
        return App(self.settings, save=self._save, progress=self.progress)

    @property
    def realtime(self) -> Realtime:
        return Realtime(self.settings, save=self._save, progress=self.progress)

    @property
    def nginx(self) -> Nginx:
        return Nginx(self.settings, save=self._save, progress=self.progress)

    def parts(self, *, every: bool = False) -> tuple[Part, ...]:
        """The processes besides PostgreSQL, in the order they start: those the settings
        enable, or ``every`` one (to stop what a stack may have started)."""
        realtime = (self.realtime,) if every or self.settings.realtime_enabled else ()
        return (self.postgrest, self.app, *realtime, self.nginx)

    def part(self, name: str) -> Part:
        """A part by its name in `stack status` (``postgrest``, ``app``, ``nginx``)."""
        for p in self.parts():
            if p.name == name:
                return p
        raise KeyError(name)

    def info(self) -> StackInfo:
        s = self.settings
        return StackInfo(
            api_url=s.api_url,
            rest_url=f"{s.api_url}/rest/v1",
            auth_url=f"{s.api_url}/auth/v1",
            storage_url=f"{s.api_url}/storage/v1",
            db_url=s.db_url,
            publishable_key=s.publishable_key,
            secret_key=s.secret_key,
            jwt_secret=s.jwt_secret,
            anon_key=s.anon_key,
            service_role_key=s.service_role_key,
        )

    # Lifecycle -------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        for folder in (self.settings.state_dir, self.settings.logs_dir, self.settings.storage_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # The database server may run as another user: it must reach its folder.
        os.chmod(self.settings.state_dir, 0o755)

    def start(self) -> StackInfo:
        """Start every part that is not running; harmless when all are.

        A new database gets the bootstrap, the migrations and the seed.

        Raises:
            StackStartError: a part did not come up (names its log).
            ConfigurationError: PostgreSQL or PostgREST is not installed.
        """
        # Imported here: the supervisor needs the Storage app's code only to start it.
        from .storage.housekeeping import apply_buckets, seed_images

        began = time.monotonic()
        self._adopt_running()
        self._prepare_dirs()
        ensure_postgrest(self.progress)  # fail (or install) early, before anything starts
        find_nginx()
        # Made means bootstrapped, migrated and seeded, images included: the marker is
        # written last, so a start that failed or was killed half-way is finished by the
        # next one (migrate is one transaction, and the seed keeps what is there).
        fresh = not self._made_marker.exists()
        started: list[Part] = []
        database_started = False
        postgrest, app, realtime, nginx = self.postgrest, self.app, self.realtime, self.nginx
        try:
            if not self.postgres.is_running():
                self.postgres.start()
                database_started = True
            database = Database(self.settings.db_url)
            pending = 0
            if fresh:
                database.migrate()
                database.seed()
                seed_images(self.settings, supabase_dir() / "images" / "sample-car.png")
                self._made_marker.write_text("bootstrapped, migrated and seeded\n")
            else:
                # Like `supabase start`: an existing database keeps its schema; say what is pending.
                database.ensure_platform()
                pending = len(database.status().pending)
            apply_buckets(self.settings)
            # After a database restart the running parts reconnect by themselves; a part
            # that does not in time is restarted.
            behind = [postgrest, app] + ([realtime] if self.settings.realtime_enabled else [])
            for part in behind:
                if not part.healthy(patient=True) and not (database_started and part.recovers()):
                    started.append(part)
                    part.start()
            if database_started or postgrest in started:
                postgrest.wait(postgrest.serving)
            # nginx's config names the ports behind it: a running nginx reloads it, so the
            # API port never refuses a caller while a part behind it restarts.
            if not nginx.running() or not nginx.healthy(patient=True):
                started.append(nginx)
                nginx.start()
            elif started:
                nginx.reload()
        except BaseException:
            # Leave nothing running that this call started: a failed start is not half a stack.
            for part in reversed(started):
                part.stop()
            if database_started:
                self.postgres.stop()
            raise
        self._save()
        info = self.info()
        info.started_in = round(time.monotonic() - began, 3)
        info.fresh_database = fresh
        info.pending_migrations = pending
        return info

    def _save(self) -> None:
        # It holds the private signing keys: readable by this user only.
        fd = os.open(self.state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.settings.model_dump_json(indent=2))
        os.chmod(self.state_file, 0o600)
        if self.config_file is not None:
            # A project's stack kept elsewhere (--state-dir) is still found from the project.
            home = self.config_file.parent.parent / ".carbook"
            if home.absolute() != self.settings.state_dir.absolute():
                home.mkdir(parents=True, exist_ok=True)
                (home / STATE_POINTER).write_text(f"{self.settings.state_dir.absolute()}\n")

    def restart(self) -> StackInfo:
        """Stop the stack and start it again with the configuration in force now (data kept)."""
        self.stop()
        self.recorded = None
        self._pg = None
        return self.start()

    def stop(self) -> list[str]:
        """Stop every part (nginx, Realtime, the app, PostgREST, PostgreSQL); harmless when stopped.
        Returns the parts that were running (none: nothing was)."""
        running = self._running_parts()
        for part in reversed(self.parts(every=True)):
            part.stop()
        self.postgres.stop()
        return running

    def status(self) -> StackStatus:
        """The health of each part, and whether config.toml changed since the start."""
        changed: tuple[str, ...] = ()
        if self.recorded is not None and self._running_parts():
            changed = tuple(self.recorded.config_changes(self.settings))
            self.settings, self._pg = self.recorded, None
        pg_running = self.postgres.is_running()
        database = PartStatus(
            name="database",
            running=pg_running,
            healthy=pg_running and self.postgres.accepts_connections(),
            url=self.settings.db_url,
            log=self.postgres.log_file,
        )
        parts = (database, *(p.status() for p in self.parts()))
        return StackStatus(parts=parts, config_file=self.config_file, changed=changed)

    def reset(self) -> StackInfo:
        """Re-create the database: bootstrap, migrations and seed again. Storage is emptied."""
        self.stop()
        self._made_marker.unlink(missing_ok=True)
        shutil.rmtree(self.postgres.data_dir, ignore_errors=True)
        shutil.rmtree(self.settings.storage_dir, ignore_errors=True)
        self._pg = None
        return self.start()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
