"""Fixtures shared by every tier: a private PostgreSQL for the session, a migrated
template database built once, and a fresh clone of it per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

# CLI output is rendered for a fixed, wide terminal in every test (and subprocess).
os.environ["COLUMNS"] = "200"
os.environ.pop("SUPABASE_DB_URL", None)

from carbook_sdk import Database
from carbook_stack import LocalPostgres
from carbook_stack.local_postgres import free_port
from carbook_stack.manager import LocalStack

from .helpers import Db, temporary_stack

# Property tests judge behaviour, not speed: no per-example deadline, which a busy
# 2-core CI runner would otherwise trip at random.
hypothesis_settings.register_profile("carbook", deadline=None)
hypothesis_settings.load_profile("carbook")

TEMPLATE = "carbook_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """One throwaway cluster for the session: its own folder, a free port."""
    base = Path(tempfile.mkdtemp(prefix="carbook-test-"))
    # The server may run as another user (when we are root): let it reach its folder.
    os.chmod(base, 0o755)
    server = LocalPostgres(base / "pg", port=free_port(), fast=True, max_connections=400)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _admin(server: LocalPostgres) -> psycopg.Connection[Any]:
    return psycopg.connect(server.url("postgres"), autocommit=True)


@pytest.fixture(scope="session")
def template_db(pg_server: LocalPostgres) -> str:
    """A database with the bootstrap and every migration applied, cloned by tests."""
    with _admin(pg_server) as conn:
        conn.execute(f"create database {TEMPLATE}")
    Database(pg_server.url(TEMPLATE)).migrate()
    return TEMPLATE


@contextmanager
def _database(server: LocalPostgres, template: str | None) -> Iterator[Db]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin(server) as conn:
        conn.execute(f"create database {name}" + (f" template {template}" if template else ""))
    try:
        yield Db(name=name, url=server.url(name))
    finally:
        with _admin(server) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def db(pg_server: LocalPostgres, template_db: str) -> Iterator[Db]:
    """A fresh, fully migrated database (a clone of the template)."""
    with _database(pg_server, template_db) as d:
        yield d


@pytest.fixture
def empty_db(pg_server: LocalPostgres) -> Iterator[Db]:
    """A fresh, empty database: no bootstrap, no migrations."""
    with _database(pg_server, None) as d:
        yield d


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The whole local stack for the session: free ports, its own folder, stopped at the end."""
    with temporary_stack("carbook-stack-") as st:
        yield st


@pytest.fixture
def own_stack() -> Iterator[LocalStack]:
    """A stack of the test's own, for tests that stop, kill or reset parts of it."""
    with temporary_stack("carbook-own-", start=False) as st:
        yield st


# Measurements some tests report (the soak's RSS, for one), printed in the terminal
# summary so CI logs show them without -s. They travel in the test's report, so a run
# split over pytest-xdist workers prints them too.
_MEASUREMENTS: list[str] = []
_MEASUREMENT = "carbook measurement"


@pytest.fixture
def report_measurement(request: pytest.FixtureRequest) -> Any:
    def report(line: str) -> None:
        request.node.user_properties.append((_MEASUREMENT, line))

    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _MEASUREMENTS.extend(str(value) for key, value in report.user_properties if key == _MEASUREMENT)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASUREMENTS:
        terminalreporter.section("carbook measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
