"""A real PgBouncer in transaction mode in front of the session's PostgreSQL: what
Supabase's Supavisor on port 6543 is to a hosted project."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from carbook_stack import LocalPostgres
from carbook_stack.local_postgres import free_port

#: Server connections per (database, user): far fewer than the clients, so the pooler
#: hands each transaction to whichever server connection is free.
POOL_SIZE = 4


@dataclass
class PgBouncer:
    port: int
    password: str
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"


def _binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    # Debian installs it in /usr/sbin, which a non-root PATH may not hold.
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


@pytest.fixture(scope="module")
def pgbouncer(pg_server: LocalPostgres) -> Iterator[PgBouncer]:
    binary = _binary()
    if binary is None:
        pytest.skip("PgBouncer is not installed (scripts/setup.sh installs it)")
    base = Path(tempfile.mkdtemp(prefix="carbook-pgbouncer-"))
    port = free_port()
    (base / "userlist.txt").write_text(f'"{pg_server.superuser}" "{pg_server.password}"\n')
    (base / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={pg_server.host} port={pg_server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {base / "userlist.txt"}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 500
logfile = {base / "pgbouncer.log"}
pidfile = {base / "pgbouncer.pid"}
"""
    )
    command = [binary, str(base / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the server's user, who must read its files.
        user = pg_server.run_as or "postgres"
        entry = pwd.getpwnam(user)
        for path in (base, *base.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        command = ["runuser", "-u", user, "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bouncer = PgBouncer(port=port, password=pg_server.password, process=process, log=base / "pgbouncer.log")
    try:
        _wait_until_ready(bouncer)
        yield bouncer
    finally:
        _stop(process, base / "pgbouncer.pid")
        shutil.rmtree(base, ignore_errors=True)


def _wait_until_ready(bouncer: PgBouncer, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if bouncer.process.poll() is not None:
            log = bouncer.log.read_text(errors="replace") if bouncer.log.exists() else ""
            raise RuntimeError(f"PgBouncer exited with {bouncer.process.returncode}: {log[-2000:]}")
        try:
            with psycopg.connect(bouncer.url("postgres"), connect_timeout=2, prepare_threshold=None) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], pidfile: Path) -> None:
    """SIGTERM to PgBouncer itself, then wait for it (and runuser) to exit. Terminating
    runuser instead costs two seconds: it waits that long before it kills its child."""
    with contextlib.suppress(OSError, ValueError):  # no pidfile (it never got that far), or gone
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
