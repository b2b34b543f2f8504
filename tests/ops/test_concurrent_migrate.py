"""Twins: two `migrate` runs at once, on one database or on several of one cluster."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from carbook_sdk import Database
from carbook_stack import LocalPostgres
from carbook_stack.local_postgres import free_port
from tests.helpers import Db, versions

VERSIONS = len(versions())


@pytest.fixture
def fresh_cluster() -> Iterator[LocalPostgres]:
    """A cluster without carbook's roles: the session's has them since its template."""
    # Not pytest's tmp_path: the server may run as another user, who cannot reach it.
    base = Path(tempfile.mkdtemp(prefix="carbook-twins-"))
    os.chmod(base, 0o755)
    try:
        with LocalPostgres(base / "pg", port=free_port(), fast=True) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_databases_of_one_fresh_cluster_bootstrapped_at_once(fresh_cluster: LocalPostgres) -> None:
    """Roles are cluster-wide; the lock migrate holds is per database: the twins race to
    create the same roles, and both must come out migrated."""
    names = [f"twin_{i}" for i in range(4)]
    with psycopg.connect(fresh_cluster.url("postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f"create database {name}")
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda n: Database(fresh_cluster.url(n)).migrate(), names))
    assert [len(r.applied) for r in results] == [VERSIONS] * len(names)
    with psycopg.connect(fresh_cluster.url("postgres"), autocommit=True) as conn:
        members = conn.execute(
            """select count(*) from pg_auth_members m join pg_roles r on r.oid = m.roleid
                where m.member = 'authenticator'::regrole
                  and r.rolname in ('anon', 'authenticated', 'service_role')"""
        ).fetchone()
    assert members == (3,)


def test_two_migrates_of_one_database_apply_each_file_once(empty_db: Db) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: Database(empty_db.url).migrate(), range(2)))
    assert sum(len(r.applied) for r in results) == VERSIONS  # each file by one twin only
    assert empty_db.scalar("select count(*) from supabase_migrations.schema_migrations") == VERSIONS
    assert empty_db.database.verify().ok
