"""Migration files and what is known of them: their names and versions, whether one may
run in the run's transaction, their status against the history table, the platform
bootstrap's SQL. No connection here: ``migrations`` runs them.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path

from pydantic import Field

from ..errors import ConfigurationError, MigrationDriftError
from .backups import RestoreResult
from .connection import Model

__all__ = [
    "BOOTSTRAP_MARKER",
    "NO_TRANSACTION",
    "MigrateResult",
    "Migration",
    "MigrationStatus",
    "PlatformState",
    "bootstrap_sql",
    "diff",
    "line_of",
    "migration_files",
    "same_sql",
    "split_statements",
    "transaction_breaker",
]

BOOTSTRAP_MARKER = "carbook platform bootstrap 4"
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


#: A migration's first line that asks for it to run outside the run's transaction.
NO_TRANSACTION = "-- carbook: no-transaction"
#: Statements PostgreSQL refuses inside a transaction block, and ones that would end the
#: run's transaction by accident (a COMMIT in a file would commit everything before it).
_TRANSACTION_BREAKERS = re.compile(
    r"(?im)\b(create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|"
    r"reindex\b[^;]*\bconcurrently|refresh\s+materialized\s+view\s+concurrently|vacuum|alter\s+system|"
    r"create\s+database|drop\s+database)\b|^\s*(begin|start\s+transaction|commit|end|rollback)\s*(?:work|transaction)?\s*;"
)


def transaction_breaker(sql: str) -> str | None:
    """The first statement in ``sql`` that cannot run inside the run's transaction."""
    # Function bodies, strings and comments may say anything (a plpgsql body ends in `end;`).
    code = re.sub(r"\$(\w*)\$.*?\$\1\$", "''", sql, flags=re.S)
    code = re.sub(r"'(?:[^']|'')*'", "''", code)
    code = re.sub(r"--[^\n]*", "", code)
    m = _TRANSACTION_BREAKERS.search(code)
    if m is None:
        return None
    return " ".join((m.group(1) or m.group(2)).split()).upper()


def split_statements(sql: str) -> list[str]:
    """A no-transaction migration's statements: split where a line ends with ``;``."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?\n", sql + "\n")
    return [p.strip() for p in parts if re.sub(r"--[^\n]*", "", p).strip()]


class Migration(Model):
    """A migration file in ``supabase/migrations``."""

    version: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def outside_transaction(self) -> bool:
        """Declared (its first line is ``-- carbook: no-transaction``) to run on its own."""
        first = self.read().lstrip().split("\n", 1)[0].strip().lower()
        return first == NO_TRANSACTION


class PlatformState(StrEnum):
    """What `ensure_platform` found and did."""

    APPLIED = "applied"  # the carbook bootstrap was (re)applied
    PRESENT = "present"  # the current carbook bootstrap was already there
    SUPABASE = "supabase"  # a real Supabase database: left alone


class MigrationStatus(Model):
    """Applied and pending migrations, and where history and files disagree (drift)."""

    applied: tuple[Migration, ...]
    pending: tuple[Migration, ...]
    #: Versions in the history with no file here (applied by something else).
    unknown: tuple[str, ...] = ()
    #: Applied files whose content differs from what the history says was applied.
    changed: tuple[Migration, ...] = ()
    #: For each changed file (by file name): a unified diff, as applied → as it is now.
    diffs: dict[str, str] = Field(default_factory=dict)
    platform_ready: bool = True

    @property
    def up_to_date(self) -> bool:
        """No migration is pending (drift aside)."""
        return not self.pending

    @property
    def drift(self) -> bool:
        return bool(self.unknown or self.changed)

    def drift_error(self) -> MigrationDriftError | None:
        """The error `migrate` raises over this drift, if there is drift."""
        if not self.drift:
            return None
        parts = [f"{v} is applied but has no migration file" for v in self.unknown]
        parts += [f"{m.filename} changed since it was applied" for m in self.changed]
        return MigrationDriftError(
            "the migration history does not match the migration files: " + "; ".join(parts),
            unknown=self.unknown,
            changed=tuple(m.filename for m in self.changed),
            hint="`carbook db status` shows what changed; restore the files as they were applied, "
            "record what is true with `carbook db repair --status applied|reverted VERSION`, "
            "or run `carbook db migrate --ignore-drift`",
        )


class MigrateResult(Model):
    applied: tuple[Migration, ...]
    platform: PlatformState
    #: The rollback backup put back while re-applying the migration it came from, if any.
    restored: RestoreResult | None = None
    #: Cars that existed when the booking migration was applied and got no backup: they
    #: are now available at the default price (0 for a new database).
    cars_without_backup: int = 0


def migration_files(folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ConfigurationError(
                f"migration file name {path.name!r} is not <14-digit timestamp>_<name>.sql",
                hint=f"rename it in {folder}",
            )
        found.append(Migration(version=m["version"], name=m["name"], path=path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigurationError(f"two migration files in {folder} share a version")
    return found


def line_of(sql: str, position: int | None) -> int | None:
    if not position:
        return None
    return sql.count("\n", 0, position - 1) + 1


def diff(statements: list[str], m: Migration) -> str:
    """What changed in ``m`` since it was applied, as a unified diff (at most 60 lines)."""
    applied = "".join(statements) if len(statements) == 1 else ";\n".join(statements) + ";\n"
    lines = list(
        difflib.unified_diff(
            applied.splitlines(keepends=True),
            m.read().splitlines(keepends=True),
            fromfile=f"{m.filename} (as applied)",
            tofile=f"{m.filename} (now)",
        )
    )
    if len(lines) > 60:
        lines = [*lines[:60], f"… {len(lines) - 60} more line(s)\n"]
    return "".join(lines)


def same_sql(statements: list[str], text: str) -> bool:
    """Whether history statements are this file's text: carbook stores the whole file as
    one statement, the Supabase CLI stores it split into statements."""
    if statements == [text]:
        return True
    return _SPACE_OR_SEMICOLON.sub("", "".join(statements)) == _SPACE_OR_SEMICOLON.sub("", text)


_SPACE_OR_SEMICOLON = re.compile(r"[\s;]+")


def bootstrap_sql() -> str:
    return resources.files("carbook_sdk").joinpath("ops/sql/bootstrap.sql").read_text(encoding="utf-8")
