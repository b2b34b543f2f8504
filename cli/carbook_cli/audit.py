"""`carbook audit`: read the audit trail (admins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from .context import client
from .output import console, escape, list_json, print_json

app = typer.Typer(
    help="Read the audit trail (admins).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _since(value: str | None) -> datetime | None:
    from carbook_sdk import ValidationError

    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"--since must be a date or time like 2026-11-25 or 2026-11-25T10:00, not {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command("list")
def list_(
    car: Annotated[str | None, typer.Option("--car", help="Only rows about this car id.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only rows by this user (email).")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action, e.g. car.booked.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only rows from this date or time on (ISO 8601, UTC).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most this many rows.", min=1, max=1000)
    ] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """List audit rows, newest first."""
    when = _since(since)
    with client() as cb:
        actor_id = cb.admin.find_user(actor).id if actor else None
        rows = cb.audit.list(car_id=car, actor_id=actor_id, action=action, since=when, limit=limit)
    if json:
        print_json(list_json([r.model_dump(mode="json") for r in rows]))
        return
    table = Table(title="Audit log")
    for col in ("time", "action", "car", "actor", "change"):
        table.add_column(col)
    for r in rows:
        changed = ""
        if r.old_data and r.new_data:
            keys = [k for k in r.new_data if r.new_data.get(k) != r.old_data.get(k) and k != "updated_at"]
            changed = ", ".join(f"{k}: {r.old_data.get(k)} → {r.new_data.get(k)}" for k in keys)
        table.add_row(
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(r.action),
            str(r.record_id or ""),
            str(r.actor_id or ""),
            escape(changed),
        )
    console.print(table)
