"""The rollback knows what it undoes from its own file, and a migration that touches the
booking feature cannot escape it: no database needed."""

from __future__ import annotations

import re

import pytest

from carbook_sdk import ConfigurationError, Database, supabase_dir
from carbook_sdk.ops.backups import ATOMIC_BOOKING_VERSION
from carbook_sdk.ops.rollback import ROLLBACK_FILE, undone_versions

#: What the feature adds: a migration naming any of these (outside comments) builds on it.
FEATURE_NAMES = re.compile(r"\b(book_car_atomic|booking_status|booked_by|booked_at|price_in_paise)\b")


def _code(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_every_migration_that_touches_the_feature_is_undone_by_the_rollback() -> None:
    undone = set(Database("postgresql://nobody@127.0.0.1:1/none").undone())
    assert ATOMIC_BOOKING_VERSION in undone
    touching = {
        path.name[:14]
        for path in sorted((supabase_dir() / "migrations").glob("*.sql"))
        if FEATURE_NAMES.search(_code(path.read_text()))
    }
    assert touching, "the feature's own migration names its objects"
    missing = touching - undone
    assert not missing, f"{ROLLBACK_FILE} does not undo {sorted(missing)}: add them to its first line"
    # And it names no version that has no file.
    files = {path.name[:14] for path in (supabase_dir() / "migrations").glob("*.sql")}
    assert undone <= files


def test_a_rollback_file_without_its_header_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must name the migrations it undoes"):
        undone_versions("-- Rollback of something\ndrop function x();\n")
    assert undone_versions("-- carbook: undoes 20250916010000 20250920000000\n-- more\n") == (
        "20250916010000",
        "20250920000000",
    )
