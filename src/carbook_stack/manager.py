"""Start, stop, inspect and reset the Docker-free local Supabase stack.

Three processes, the same addresses and keys as ``supabase start``:

- PostgreSQL: a private cluster (``LocalPostgres``) on ``[db].port``;
- PostgREST 12: the real binary, on an internal port;
- the gateway: one ASGI app on ``[api].port`` serving ``/rest/v1`` (proxied to
  PostgREST), ``/auth/v1`` and ``/storage/v1``.

State (ports, pids, logs, data) lives in one folder, ``.carbook/`` of the project by
default. Every part runs detached from the caller, so ``carbook stack start`` returns
and the stack keeps running until ``carbook stack stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import BaseModel

from carbook_sdk.config import (
    load_local_config,
    project_root,
    read_stack_state,
    supabase_dir,
)
from carbook_sdk.errors import CarbookError, ConfigurationError
from carbook_sdk.ops import Database

from .local_postgres import LocalPostgres, cluster_dir, free_port, port_in_use
from .nginx import find_nginx, write_config
from .processes import kill_orphans, pid_alive, terminate
from .realtime import RealtimePart
from .settings import StackSettings
from .tools import ensure_postgrest

__all__ = [
    "LocalStack",
    "PartStatus",
    "StackConfigChangedError",
    "StackInfo",
    "StackStartError",
    "StackStatus",
]


class StackStartError(CarbookError):
    """A part of the local stack did not start."""

    code = "stack_start_failed"


class StackConfigChangedError(ConfigurationError):
    """The running stack was started with another configuration."""

    code = "stack_config_changed"

    def __init__(self, message: str | None = None, *, changed: list[str], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.changed = changed


class PartStatus(BaseModel):
    name: str
    running: bool
    healthy: bool
    url: str
    pid: int | None = None
    log: Path | None = None
    detail: str = ""


class StackStatus(BaseModel):
    parts: tuple[PartStatus, ...]
    #: The configuration file in force (None for a stack built in code, as tests do).
    config_file: Path | None = None
    #: config.toml keys changed since the running stack started (`stack restart` applies them).
    changed: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return all(p.healthy for p in self.parts)

    @property
    def running(self) -> bool:
        return any(p.running for p in self.parts)


class StackInfo(BaseModel):
    """What ``supabase status`` prints."""

    api_url: str
    rest_url: str
    auth_url: str
    storage_url: str
    db_url: str
    publishable_key: str
    secret_key: str
    jwt_secret: str
    anon_key: str
    service_role_key: str
    #: Seconds `start` took, by its own measurement (0 when it was already running).
    started_in: float = 0.0
    fresh_database: bool = False
    #: Migrations not yet applied to an existing database (`carbook db migrate` applies them).
    pending_migrations: int = 0


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
            ConfigurationError: no project here, or its config.toml is unreadable.
        """
        root = project_root()
        state = Path(state_dir or root / ".carbook")
        pointer = root / ".carbook" / STATE_POINTER
        if state_dir is None and not (state / "stack.json").exists() and pointer.is_file():
            # Started with --state-dir: that is where this project's stack lives.
            elsewhere = Path(pointer.read_text().strip())
            if (elsewhere / "stack.json").exists():
                state = elsewhere
        config_file = root / "supabase" / "config.toml"
        recorded = None
        saved = read_stack_state(state)
        if saved is not None:
            with contextlib.suppress(ValueError):
                recorded = StackSettings.model_validate({**saved, "state_dir": state})
        if recorded is not None and recorded.config_file is None:
            return cls(recorded)  # built in code (tests, benchmarks): not config.toml's to change
        settings = StackSettings.from_config(state, load_local_config(config_file), config_file=config_file)
        return cls(settings, recorded=recorded, config_file=config_file)

    def _running_parts(self) -> list[str]:
        running = ["database"] if self.postgres.is_running() else []
        return running + [
            p for p in ("postgrest", "gateway", "realtime", "nginx") if pid_alive(self._read_pid(p))
        ]

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

    def _pidfile(self, part: str) -> Path:
        return self.settings.state_dir / f"{part}.pid"

    def _log(self, part: str) -> Path:
        return self.settings.logs_dir / f"{part}.log"

    def _recorded_pid(self, part: str) -> int | None:
        """The pid in the part's pid file, whether or not that process still runs."""
        try:
            return int(self._pidfile(part).read_text().strip())
        except (OSError, ValueError):
            return None

    def _read_pid(self, part: str) -> int | None:
        """The part's pid, if that process is still ours (a pid file can outlive a reboot,
        and its number be reused by anything: that process is never signalled)."""
        pid = self._recorded_pid(part)
        if pid is None:
            return None
        marker = {
            "postgrest": "postgrest",
            "gateway": "carbook_stack.gateway",
            "nginx": "nginx",
            "realtime": RealtimePart.marker,
        }[part]
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return pid if os.name != "posix" or not Path("/proc").is_dir() else None
        # Empty while the process is still being exec'd (or a zombie): not someone else's.
        return pid if not cmdline or marker in cmdline else None

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
        began = time.monotonic()
        self._adopt_running()
        self._prepare_dirs()
        ensure_postgrest(self.progress)  # fail (or install) early, before anything starts
        find_nginx()
        # Made means bootstrapped, migrated and seeded, images included: the marker is
        # written last, so a start that failed or was killed half-way is finished by the
        # next one (migrate is one transaction, and the seed keeps what is there).
        fresh = not self._made_marker.exists()
        started: list[str] = []
        try:
            if not self.postgres.is_running():
                self.postgres.start()
                started.append("database")
            database = Database(self.settings.db_url)
            pending = 0
            if fresh:
                database.migrate()
                database.seed()
                self._seed_images()
                self._made_marker.write_text("bootstrapped, migrated and seeded\n")
            else:
                # Like `supabase start`: an existing database keeps its schema; say what is pending.
                database.ensure_platform()
                pending = len(database.status().pending)
            self._apply_buckets()
            if not self.settings.postgrest_port or not self._postgrest_alive(patient=True):
                started.append("postgrest")
                self._start_postgrest()
            if not self._gateway_alive(patient=True):
                started.append("gateway")
                self._start_gateway()
            if self._realtime.enabled and not self._realtime_alive(patient=True):
                started.append("realtime")
                self._start_realtime()
            if {"database", "postgrest"} & set(started):
                # /ready can say yes before PostgREST answers requests (its schema cache):
                # wait until it serves them, several in a row.
                self._wait("postgrest", self._postgrest_serving)
            # nginx's config names the ports behind it: a part restarted there means a new one.
            if {"postgrest", "gateway", "realtime"} & set(started) or not self._nginx_alive(patient=True):
                started.append("nginx")
                self._start_nginx()
        except BaseException:
            # Leave nothing running that this call started: a failed start is not half a stack.
            for part in ("nginx", "realtime", "gateway", "postgrest"):
                if part in started:
                    terminate(self._read_pid(part))
                    self._pidfile(part).unlink(missing_ok=True)
            if "database" in started:
                self.postgres.stop()
            raise
        self._save()
        info = self.info()
        info.started_in = round(time.monotonic() - began, 3)
        info.fresh_database = fresh
        info.pending_migrations = pending
        return info

    def _apply_buckets(self) -> None:
        """``[storage.buckets.*]`` of config.toml onto ``storage.buckets``, as the Supabase CLI
        does at every start: created when missing, their public flag and limits set."""
        if not self.settings.buckets:
            return
        with psycopg.connect(self.settings.db_url, autocommit=True) as conn, conn.transaction():
            for b in self.settings.buckets:
                conn.execute(
                    """insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
                       values (%s, %s, %s, %s, %s)
                       on conflict (id) do update
                         set public = excluded.public, file_size_limit = excluded.file_size_limit,
                             allowed_mime_types = excluded.allowed_mime_types, updated_at = now()
                       where (storage.buckets.public, storage.buckets.file_size_limit,
                              storage.buckets.allowed_mime_types)
                             is distinct from (excluded.public, excluded.file_size_limit,
                                               excluded.allowed_mime_types)""",
                    (b.name, b.name, b.public, b.file_size_limit, list(b.allowed_mime_types) or None),
                )

    def _seed_images(self) -> None:
        """Give the seeded cars their images (seed.sql can insert rows, not files)."""
        sample = supabase_dir() / "images" / "sample-car.png"
        if not sample.is_file():
            return
        # A thread of its own: start() may be called where an event loop already runs.
        with ThreadPoolExecutor(1) as worker:
            worker.submit(asyncio.run, self._write_images(sample.read_bytes())).result()

    async def _write_images(self, data: bytes) -> None:
        """Each seeded image path as an object, written as an upload writes one."""
        # Imported here: the supervisor needs the Storage app's code only to seed.
        import hashlib

        import psycopg

        from .storage.access import as_platform
        from .storage.store import Store, object_metadata, write_object

        objects = Store(self.settings.storage_dir)
        meta = object_metadata(hashlib.md5(data).hexdigest(), len(data), "image/png", "max-age=3600")
        async with await psycopg.AsyncConnection.connect(self.settings.db_url, autocommit=True) as conn:
            cur = await conn.execute(
                "select distinct image_path from public.cars where image_path like 'seed/%'"
            )
            for (path,) in await cur.fetchall():
                temp = objects.temp()
                temp.write_bytes(data)
                try:
                    # An object already there is kept, as seed data never overwrites.
                    with contextlib.suppress(psycopg.errors.UniqueViolation):
                        await write_object(
                            as_platform(conn), objects, temp, bucket_id="car-images", name=path, metadata=meta
                        )
                finally:
                    temp.unlink(missing_ok=True)

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

    def _spawn(self, part: str, cmd: list[str], env: dict[str, str]) -> int:
        log = self._log(part).open("ab")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # detached: survives the CLI, stopped as a group
            cwd=self.settings.state_dir,
        )
        log.close()
        self._pidfile(part).write_text(str(proc.pid))
        return proc.pid

    def _postgrest_alive(self, patient: bool = False) -> bool:
        return self._part_alive(
            "postgrest", f"http://{self.settings.host}:{self.settings.postgrest_admin_port}/ready", patient
        )

    def _postgrest_serving(self) -> bool:
        s = self.settings
        headers = {"Authorization": f"Bearer {s.anon_key}"}
        try:
            with httpx.Client(timeout=2.0) as client:
                return all(
                    client.get(f"{s.postgrest_url}/", headers=headers).status_code == 200 for _ in range(5)
                )
        except httpx.HTTPError:
            return False

    def _gateway_alive(self, patient: bool = False) -> bool:
        s = self.settings
        if not s.app_port:
            return False
        return self._part_alive(
            "gateway", f"http://{s.host}:{s.app_port}/auth/v1/health", patient, {"apikey": s.anon_key}
        )

    def _nginx_alive(self, patient: bool = False) -> bool:
        s = self.settings
        if not s.nginx_status_port:
            return False
        return self._part_alive("nginx", f"http://{s.host}:{s.nginx_status_port}/", patient)

    def _part_alive(self, part: str, url: str, patient: bool, headers: dict[str, str] | None = None) -> bool:
        """Its process runs and its health URL answers 200.

        ``patient``: a running process that does not answer in time (busy, not dead) is
        asked twice more before it counts as dead, so `start` does not restart a part
        that is merely slow on a loaded machine.
        """
        if not pid_alive(self._read_pid(part)):
            return False
        for _ in range(3 if patient else 1):
            try:
                return httpx.get(url, headers=headers, timeout=2.0).status_code == 200
            except httpx.TimeoutException:
                continue
            except httpx.HTTPError:
                return False
        return False

    def _wait(self, part: str, check: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not pid_alive(self._read_pid(part)):
                break
            time.sleep(0.05)
        tail = ""
        with contextlib.suppress(OSError):
            tail = self._log(part).read_text(errors="replace")[-1500:]
        raise StackStartError(f"{part} did not become healthy", hint=f"see {self._log(part)}", detail=tail)

    def _start_postgrest(self) -> None:
        binary = ensure_postgrest(self.progress)
        s = self.settings
        terminate(self._read_pid("postgrest"))
        # Keep the ports a running gateway already proxies to; move only if taken.
        if not s.postgrest_port or port_in_use(s.postgrest_port, s.host):
            if s.postgrest_port:
                terminate(self._read_pid("gateway"))  # it would proxy to the old port
            s.postgrest_port = free_port(avoid={s.api_port, s.db_port, s.postgrest_admin_port})
        if not s.postgrest_admin_port or port_in_use(s.postgrest_admin_port, s.host):
            s.postgrest_admin_port = free_port(avoid={s.api_port, s.db_port, s.postgrest_port})
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGRST_DB_URI": f"postgresql://authenticator:postgres@{s.host}:{s.db_port}/postgres",
            "PGRST_DB_SCHEMAS": ",".join(s.schemas),
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_DB_EXTRA_SEARCH_PATH": ",".join(s.extra_search_path),
            "PGRST_DB_POOL": str(s.postgrest_pool),
            "PGRST_DB_MAX_ROWS": str(s.max_rows),
            "PGRST_DB_CHANNEL_ENABLED": "true",
            # A JWK set: the signing keys' public halves (user tokens, ES256) and the JWT
            # secret as an `oct` key (the legacy HS256 keys).
            "PGRST_JWT_SECRET": s.keys().postgrest_secret(),
            "PGRST_SERVER_HOST": s.host,
            "PGRST_SERVER_PORT": str(s.postgrest_port),
            "PGRST_ADMIN_SERVER_PORT": str(s.postgrest_admin_port),
            "PGRST_LOG_LEVEL": "error",
        }
        self._spawn("postgrest", [str(binary)], env)
        self._wait("postgrest", self._postgrest_alive)

    def _start_gateway(self) -> None:
        """The Python app (Auth and Storage), on an internal port behind nginx."""
        s = self.settings
        terminate(self._read_pid("gateway"))
        # No upload is in flight now: what a killed gateway left behind can go.
        self._clean_storage()
        if not s.app_port or port_in_use(s.app_port, s.host):
            s.app_port = free_port(avoid={s.api_port, s.db_port, s.postgrest_port, s.postgrest_admin_port})
        self._save()
        env = dict(os.environ)
        self._spawn("gateway", [sys.executable, "-m", "carbook_stack.gateway", str(self.state_file)], env)
        self._wait("gateway", self._gateway_alive)

    # Realtime: the one hook into the service's package (carbook_stack.realtime) ----------
    @property
    def _realtime(self) -> RealtimePart:
        return RealtimePart(self.settings)

    def _realtime_alive(self, patient: bool = False) -> bool:
        return bool(self.settings.realtime_port) and self._part_alive(
            "realtime", self._realtime.health_url, patient
        )

    def _start_realtime(self) -> None:
        """The Realtime service, on an internal port behind nginx (the database must be up)."""
        s = self.settings
        terminate(self._read_pid("realtime"))
        if not s.realtime_port or port_in_use(s.realtime_port, s.host):
            s.realtime_port = free_port(
                avoid={s.api_port, s.db_port, s.postgrest_port, s.postgrest_admin_port, s.app_port}
            )
        self._save()
        self._spawn("realtime", self._realtime.command(self.state_file), dict(os.environ))
        self._wait("realtime", self._realtime_alive)

    def _clean_storage(self) -> None:
        """Remove what uploads that never finished left in storage: temporary files, and
        version files no object row names (a gateway killed between writing the bytes and
        committing the row). Run only while no gateway serves, so nothing is in flight."""
        # Imported here: the supervisor needs the Storage app's code only now and to seed.
        import psycopg

        from .storage.store import Store

        objects = Store(self.settings.storage_dir)
        if not objects.objects.is_dir():
            return
        with psycopg.connect(self.settings.db_url, autocommit=True) as conn:
            rows = conn.execute("select version from storage.objects where version is not null").fetchall()
        unfinished, orphaned = objects.sweep({str(v) for (v,) in rows})
        if unfinished or orphaned:
            line = (
                f"storage: removed {unfinished} unfinished upload(s) and "
                f"{orphaned} file(s) no object names, left by a stopped gateway"
            )
            with self._log("gateway").open("a") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
            if self.progress is not None:
                self.progress(line)

    def restart(self) -> StackInfo:
        """Stop the stack and start it again with the configuration in force now (data kept)."""
        self.stop()
        self.recorded = None
        self._pg = None
        return self.start()

    def _start_nginx(self) -> None:
        """nginx on the API port, in front of PostgREST and the app."""
        s = self.settings
        terminate(self._read_pid("nginx"))
        kill_orphans(self._recorded_pid("nginx"), "nginx")
        if port_in_use(s.api_port, s.host):
            raise StackStartError(
                f"port {s.api_port} is already in use",
                hint="another stack (or `supabase start`) runs there; stop it or change [api].port",
            )
        if not s.nginx_status_port or port_in_use(s.nginx_status_port, s.host):
            s.nginx_status_port = free_port(
                avoid={
                    s.api_port,
                    s.db_port,
                    s.postgrest_port,
                    s.postgrest_admin_port,
                    s.app_port,
                    s.realtime_port,
                }
            )
        config = write_config(s)
        self._save()
        binary = find_nginx()
        self._spawn(
            "nginx",
            [str(binary), "-p", str(config.parent), "-c", str(config), "-e", str(self._log("nginx-error"))],
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        self._wait("nginx", self._nginx_alive)

    def stop(self) -> list[str]:
        """Stop every part (nginx, the app, PostgREST, PostgreSQL); harmless when stopped.
        Returns the parts that were running (none: nothing was)."""
        running = self._running_parts()
        for part in ("nginx", "realtime", "gateway", "postgrest"):
            terminate(self._read_pid(part))
            if part == "nginx":
                kill_orphans(self._recorded_pid(part), "nginx")
            self._pidfile(part).unlink(missing_ok=True)
        self.postgres.stop()
        return running

    def status(self) -> StackStatus:
        """The health of each part, and whether config.toml changed since the start."""
        changed: tuple[str, ...] = ()
        if self.recorded is not None and self._running_parts():
            changed = tuple(self.recorded.config_changes(self.settings))
            self.settings, self._pg = self.recorded, None
        s = self.settings
        pg_running = self.postgres.is_running()
        pg_healthy = pg_running and self.postgres.accepts_connections()
        parts = [
            PartStatus(
                name="database",
                running=pg_running,
                healthy=pg_healthy,
                url=s.db_url,
                log=self.postgres.log_file,
            )
        ]
        checks: list[tuple[str, str, Callable[[], bool]]] = [
            ("postgrest", s.postgrest_url if s.postgrest_port else "", self._postgrest_alive),
            ("gateway", f"http://{s.host}:{s.app_port}" if s.app_port else "", self._gateway_alive),
            ("nginx", s.api_url, self._nginx_alive),
        ]
        if self._realtime.enabled:
            checks.insert(
                2, ("realtime", self._realtime.url if s.realtime_port else "", self._realtime_alive)
            )
        for part, url, alive in checks:
            pid = self._read_pid(part)
            running = pid_alive(pid)
            parts.append(
                PartStatus(
                    name=part,
                    running=running,
                    healthy=running and alive(),
                    url=url,
                    pid=pid if running else None,
                    log=self._log(part),
                )
            )
        return StackStatus(parts=tuple(parts), config_file=self.config_file, changed=changed)

    def reset(self) -> StackInfo:
        """Re-create the database: bootstrap, migrations and seed again. Storage is emptied."""
        self.stop()
        self._made_marker.unlink(missing_ok=True)
        shutil.rmtree(self.postgres.data_dir, ignore_errors=True)
        shutil.rmtree(self.settings.storage_dir, ignore_errors=True)
        self._pg = None
        return self.start()

    def destroy(self) -> None:
        """Stop everything and delete the state folder (and the cluster, wherever it is)."""
        self.stop()
        shutil.rmtree(self.postgres.data_dir, ignore_errors=True)
        shutil.rmtree(self.settings.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
