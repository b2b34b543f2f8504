"""`carbook db`: apply, inspect, verify and roll back the schema (ops).

Every command names the database it acts on (host, port, database, user) before it
does anything, so nobody checks or rolls back the wrong one.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .output import EXIT_CHECKS_FAILED, console, err_console, escape, new_table, print_json

if TYPE_CHECKING:
    from carbook_sdk.ops import Database, RestoreResult

app = typer.Typer(
    help="Apply, inspect, verify and roll back the database schema.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# No envvar here: the SDK resolves CARBOOK_DB_URL and SUPABASE_DB_URL itself, by the one
# precedence rule, and so knows (and says) where the URL came from.
DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        help="PostgreSQL URL of the database; a transaction pooler's (Supavisor on 6543, PgBouncer) "
        "is fine. Default: CARBOOK_DB_URL, then SUPABASE_DB_URL, then the local stack's "
        "(refused when --url/SUPABASE_URL names a hosted project).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
BackupDir = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir",
        help="The folder of rollback backup files (written by `carbook db rollback`), for backups "
        "taken before the database kept its own copy. Default: .carbook/backups at the project root.",
        show_default=False,
    ),
]


def _default_backup_dir() -> Path:
    from carbook_sdk.ops.backups import default_backup_dir

    return default_backup_dir()


def _database(url: str | None, *, json: bool, project: bool = False) -> "Database":
    """The database to act on, announced before anything touches it. ``project``: the
    command applies the project's own files (migrations, seed), so there must be a project
    (`carbook init`); the others fall back to carbook's packaged schema outside one."""
    # Imported here: psycopg loads only when a db command runs, not for `carbook --help`.
    from carbook_sdk.config import project_root
    from carbook_sdk.ops import Database

    from .context import state

    project_dir = project_root() / "supabase" if project else None
    database = Database(url, api_url=state.url, project_dir=project_dir)
    # With --json the line goes to stderr: stdout stays one JSON document (with "target").
    out = err_console if json else console
    out.print(f"Target: {escape(str(database.target))} (from {escape(database.target.source)})")
    return database


def _target(database: "Database") -> dict[str, Any]:
    return database.target.model_dump()


def _print_restored(restored: "RestoreResult") -> None:
    where = (
        f"the database's copy of {escape(str(restored.backup))}"
        if restored.source == "database"
        else escape(str(restored.backup))
    )
    console.print(
        f"[green]Restored[/] {restored.bookings} booking(s) and {restored.prices} price(s) "
        f"for the {restored.cars} car(s) in {where}."
    )
    for row in restored.not_restored:
        console.print(f"  [yellow]not restored[/] car {row.car_id}: {escape(row.reason)}")


@app.command()
def migrate(
    db_url: DbUrl = None,
    json: Json = False,
    ignore_drift: Annotated[
        bool,
        typer.Option(
            "--ignore-drift", help="Migrate even though applied migrations and the migration files disagree."
        ),
    ] = False,
    no_restore: Annotated[
        bool,
        typer.Option(
            "--no-restore",
            help="Re-apply a rolled-back migration without putting its rollback backup back.",
        ),
    ] = False,
    backup_dir: BackupDir = None,
) -> None:
    """Apply the platform bootstrap (if needed) and every pending migration, all in one
    transaction: killed or failing at any moment, nothing of the run is applied.
    Re-applying a rolled-back migration puts its backup's bookings and prices back in that
    same transaction (from the copy the database keeps), and refuses when none is left."""
    database = _database(db_url, json=json, project=True)
    backup_dir = backup_dir or _default_backup_dir()
    result = database.migrate(ignore_drift=ignore_drift, restore=not no_restore, backup_dir=backup_dir)
    if json:
        print_json(
            {
                "target": _target(database),
                "platform": result.platform.value,
                "applied": [{"version": m.version, "name": m.name} for m in result.applied],
                "restored": result.restored.model_dump(mode="json") if result.restored else None,
                "cars_without_backup": result.cars_without_backup,
            }
        )
        return
    console.print(f"Platform bootstrap: {result.platform.value}")
    if not result.applied:
        console.print("Database is up to date: no pending migrations.")
    for m in result.applied:
        console.print(f"[green]Applied[/] {m.version} {m.name}")
    if result.restored is not None:
        _print_restored(result.restored)
    if result.cars_without_backup:
        where = "" if no_restore else f": no rollback backup of this database in {escape(str(backup_dir))}"
        console.print(
            f"[yellow]{result.cars_without_backup} existing car(s) are now available at the default price[/]"
            f"{where} (`carbook db restore BACKUP` puts a backup back)."
        )


@app.command()
def status(db_url: DbUrl = None, json: Json = False) -> None:
    """Show which migrations are applied and which are pending; exit 8 on drift (an applied
    migration without its file, or a file changed since it was applied)."""
    database = _database(db_url, json=json)
    st = database.status()
    changed = {m.version for m in st.changed}
    rows = [
        (m.version, m.name, "applied, file changed" if m.version in changed else "applied")
        for m in st.applied
    ]
    rows += [(m.version, m.name, "pending") for m in st.pending]
    rows += [(v, "", "applied, no local file") for v in st.unknown]
    rows.sort()
    if json:
        print_json(
            {
                "target": _target(database),
                "up_to_date": st.up_to_date,
                "platform_ready": st.platform_ready,
                "drift": {
                    "unknown": list(st.unknown),
                    "changed": [m.filename for m in st.changed],
                    "diffs": st.diffs,
                },
                "migrations": [{"version": v, "name": n, "state": s} for v, n, s in rows],
            }
        )
    else:
        table = new_table("version", "name", "state", title="Migrations")
        colour = {"applied": "green", "pending": "yellow"}
        for v, n, s in rows:
            table.add_row(v, n, f"[{colour.get(s, 'bold red')}]{s}[/]")
        console.print(table)
        for filename, diff in st.diffs.items():
            console.print(f"\n[bold red]{escape(filename)} changed since it was applied:[/]")
            console.print(escape(diff.rstrip("\n")), highlight=False, soft_wrap=True)
        if not st.drift:
            console.print("Up to date." if st.up_to_date else f"{len(st.pending)} pending.")
    drift = st.drift_error()
    if drift is not None:
        raise drift


@app.command()
def repair(
    version: Annotated[
        str, typer.Argument(help="The migration's version: the 14 digits its file name starts with.")
    ],
    status_: Annotated[
        str,
        typer.Option(
            "--status",
            help="applied: record the local file as applied (its text as it is now); "
            "reverted: remove the version from the history. Nothing is run either way.",
            metavar="applied|reverted",
        ),
    ],
    db_url: DbUrl = None,
    json: Json = False,
) -> None:
    """Mark a migration applied or reverted in the history, as `supabase migration repair`
    does: for a file changed on purpose, or a change made by hand."""
    if status_ not in ("applied", "reverted"):
        from carbook_sdk.errors import ValidationError

        raise ValidationError(f"--status must be applied or reverted, not {status_!r}")
    database = _database(db_url, json=json, project=True)
    done = database.repair(version, "applied" if status_ == "applied" else "reverted")
    if json:
        print_json({"target": _target(database), "version": version, "status": status_, "done": done})
    else:
        console.print(f"[green]Repaired[/]: {escape(done)}.")


@app.command()
def verify(
    db_url: DbUrl = None,
    json: Json = False,
    failed_only: Annotated[bool, typer.Option("--failed", help="List only failing checks.")] = False,
    lint: Annotated[
        bool,
        typer.Option("--lint", help="Also run the Supabase-style security and performance lints (splinter)."),
    ] = False,
) -> None:
    """Check every element of the atomic-booking schema by name; exit 1 if any check
    (or, with --lint, any lint other than the documented intended one) fails."""
    database = _database(db_url, json=json)
    report = database.verify()
    lints = database.lint() if lint else None
    if json:
        data: dict[str, object] = {
            "target": _target(database),
            "ok": report.ok,
            "checks": [c.model_dump() for c in report.checks],
        }
        if lints is not None:
            data["lint"] = {
                "ok": lints.ok,
                "exposed_schemas": list(lints.exposed_schemas),
                "findings": [f.model_dump() for f in lints.findings],
            }
        print_json(data)
    else:
        shown = [c for c in report.checks if not (failed_only and c.ok)]
        if shown:
            table = new_table("check", "result", "detail", title="Schema verification")
            for c in shown:
                table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAILED[/]", c.detail)
            console.print(table)
        n_failed = len(report.failed)
        console.print(
            f"[green]All {len(report.checks)} checks passed.[/]"
            if report.ok
            else f"[bold red]{n_failed} of {len(report.checks)} checks failed.[/]"
        )
        if lints is not None:
            if lints.findings:
                table = new_table("lint", "level", "object", "detail", title="Lints")
                for f in lints.findings:
                    level = f"[dim]{f.level} (intended)[/]" if f.intended else f"[bold red]{f.level}[/]"
                    table.add_row(f.lint, level, f.object, f.intended or f.detail)
                console.print(table)
            console.print(
                "[green]Lints: no problems[/] (exposed schemas: " + ", ".join(lints.exposed_schemas) + ")."
                if lints.ok
                else f"[bold red]Lints: {len(lints.problems)} problem(s).[/]"
            )
    if not report.ok or (lints is not None and not lints.ok):
        raise typer.Exit(EXIT_CHECKS_FAILED)


@app.command()
def rollback(
    db_url: DbUrl = None,
    force: Annotated[
        bool, typer.Option("--force", help="Roll back even though cars are booked (they are backed up).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir",
            help="Where the backup of booking data is written. Default: .carbook/backups at the project root.",
            show_default=False,
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Undo the atomic-booking migration, after backing up the booking data it drops (to a
    file, and to a copy the database keeps, in the rollback's own transaction)."""
    database = _database(db_url, json=json)
    plan = database.plan_rollback()
    # With --json the plan and the question go to stderr: stdout stays one JSON document.
    out = err_console if json else console
    target = escape(str(database.target))
    out.print(
        f"Rolling back migration {plan.version} on {target}, a database with {plan.cars} car(s), "
        f"{plan.booked_cars} booked. This will:"
    )
    for action in plan.actions:
        out.print(f"  - {action}")
    refused = plan.refusal(force)
    if refused is not None:
        raise refused  # before asking: a question whose yes would be refused anyway is noise
    if not yes:
        # Only --yes skips the question: an output format is not a consent.
        typer.confirm(f"Roll back {plan.version} on {database.target}. Proceed?", abort=True, err=json)
    backup_dir = backup_dir or _default_backup_dir()
    result = database.rollback(force=force, backup_dir=backup_dir)
    if json:
        print_json(
            {
                "target": _target(database),
                "rolled_back": result.plan.version,
                "backup_path": str(result.backup_path),
                "backed_up_cars": result.backed_up_cars,
                "booked_cars": result.plan.booked_cars,
            }
        )
        return
    console.print(f"[green]Rolled back[/] {result.plan.version}.")
    console.print(
        f"Backup of {result.backed_up_cars} car(s): {escape(str(result.backup_path))} "
        "(the database keeps a copy too)."
    )
    console.print("`carbook db migrate` re-applies it and puts this backup back in the same transaction.")


@app.command()
def restore(
    backup: Annotated[Path, typer.Argument(help="A backup file written by `carbook db rollback`.")],
    db_url: DbUrl = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
) -> None:
    """Put booking and price data from a rollback backup back (`carbook db migrate` does it
    itself for the backups in its --backup-dir; this is for one kept elsewhere)."""
    from carbook_sdk.ops.backups import read_backup

    database = _database(db_url, json=json)
    doc = read_backup(backup)  # before asking: a file that is no backup needs no question
    if not yes:
        booked = sum(1 for car in doc["cars"] if car.get("booking_status") == "booked")
        typer.confirm(
            f"Restore {booked} booking(s) and the prices of {len(doc['cars'])} car(s) from {backup} "
            f"into {database.target}. Proceed?",
            abort=True,
            err=json,
        )
    result = database.restore_backup(backup)
    if json:
        print_json({"target": _target(database), **result.model_dump(mode="json")})
    else:
        _print_restored(result)


@app.command()
def seed(db_url: DbUrl = None, json: Json = False) -> None:
    """Load the demo data of supabase/seed.sql."""
    database = _database(db_url, json=json, project=True)
    database.seed()
    if json:
        print_json({"target": _target(database), "seeded": True})
    else:
        console.print("Seed data loaded.")
