"""`carbook db`: apply, inspect, verify and roll back the schema (ops)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from .output import EXIT_CHECKS_FAILED, console, err_console, print_json

if TYPE_CHECKING:
    from carbook_sdk.ops import Database

app = typer.Typer(
    help="Apply, inspect, verify and roll back the database schema.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar=["CARBOOK_DB_URL", "SUPABASE_DB_URL"],
        help="PostgreSQL URL of the database. Default: the local stack's.",
        show_envvar=True,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def _database(url: str | None, *, project: bool = False) -> Database:
    """The database to act on. ``project``: the command applies the project's own files
    (migrations, seed), so there must be a project (`carbook init`); the others fall back
    to carbook's packaged schema when run outside one."""
    # Imported here: psycopg loads only when a db command runs, not for `carbook --help`.
    from carbook_sdk.config import project_root
    from carbook_sdk.ops import Database

    if project:
        return Database(url, project_dir=project_root() / "supabase")
    return Database(url)


@app.command()
def migrate(db_url: DbUrl = None, json: Json = False) -> None:
    """Apply the platform bootstrap (if needed) and every pending migration, each in one transaction."""
    result = _database(db_url, project=True).migrate()
    if json:
        print_json(
            {
                "platform": result.platform.value,
                "applied": [{"version": m.version, "name": m.name} for m in result.applied],
            }
        )
        return
    console.print(f"Platform bootstrap: {result.platform.value}")
    if not result.applied:
        console.print("Database is up to date: no pending migrations.")
    for m in result.applied:
        console.print(f"[green]Applied[/] {m.version} {m.name}")


@app.command()
def status(db_url: DbUrl = None, json: Json = False) -> None:
    """Show which migrations are applied and which are pending."""
    st = _database(db_url).status()
    rows = [(m.version, m.name, "applied") for m in st.applied]
    rows += [(m.version, m.name, "pending") for m in st.pending]
    rows += [(v, "", "applied, no local file") for v in st.unknown]
    rows.sort()
    if json:
        print_json(
            {
                "up_to_date": st.up_to_date,
                "platform_ready": st.platform_ready,
                "migrations": [{"version": v, "name": n, "state": s} for v, n, s in rows],
            }
        )
        return
    table = Table("version", "name", "state", title="Migrations")
    for v, n, s in rows:
        table.add_row(v, n, f"[green]{s}[/]" if s == "applied" else f"[yellow]{s}[/]")
    console.print(table)
    console.print("Up to date." if st.up_to_date else f"{len(st.pending)} pending.")


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
    database = _database(db_url)
    report = database.verify()
    lints = database.lint() if lint else None
    if json:
        data: dict[str, object] = {"ok": report.ok, "checks": [c.model_dump() for c in report.checks]}
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
            table = Table("check", "result", "detail", title="Schema verification")
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
                table = Table("lint", "level", "object", "detail", title="Lints")
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
        Path, typer.Option("--backup-dir", help="Where the backup of booking data is written.")
    ] = Path(".carbook/backups"),
    json: Json = False,
) -> None:
    """Undo the atomic-booking migration, after backing up the booking data it drops."""
    database = _database(db_url)
    plan = database.plan_rollback()
    # With --json the plan and the question go to stderr: stdout stays one JSON document.
    out = err_console if json else console
    out.print(
        f"Rolling back migration {plan.version} on a database with {plan.cars} car(s), "
        f"{plan.booked_cars} booked. This will:"
    )
    for action in plan.actions:
        out.print(f"  - {action}")
    refused = plan.refusal(force)
    if refused is not None:
        raise refused  # before asking: a question whose yes would be refused anyway is noise
    if not yes:
        # Only --yes skips the question: an output format is not a consent.
        typer.confirm("Proceed?", abort=True, err=json)
    result = database.rollback(force=force, backup_dir=backup_dir)
    if json:
        print_json(
            {
                "rolled_back": result.plan.version,
                "backup_path": str(result.backup_path),
                "backed_up_cars": result.backed_up_cars,
                "booked_cars": result.plan.booked_cars,
            }
        )
        return
    console.print(f"[green]Rolled back[/] {result.plan.version}.")
    console.print(f"Backup of {result.backed_up_cars} car(s): {result.backup_path}")
    console.print("Re-apply with `carbook db migrate`, then `carbook db restore BACKUP` to restore bookings.")


@app.command()
def restore(
    backup: Annotated[Path, typer.Argument(help="A backup file written by `carbook db rollback`.")],
    db_url: DbUrl = None,
    json: Json = False,
) -> None:
    """Put booking and price data from a rollback backup back (after `carbook db migrate`)."""
    result = _database(db_url).restore_backup(backup)
    if json:
        print_json(result.model_dump())
    else:
        console.print(
            f"Restored {result.bookings} booking(s) and {result.prices} price(s) "
            f"for the {result.cars} car(s) in {backup}."
        )


@app.command()
def seed(db_url: DbUrl = None) -> None:
    """Load the demo data of supabase/seed.sql."""
    _database(db_url, project=True).seed()
    console.print("Seed data loaded.")
