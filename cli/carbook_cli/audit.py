"""`carbook audit`: read the audit trail (admins)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .context import car_id, client
from .output import console, escape, full_ids, ids_note, list_json, print_json, short_id, table

app = typer.Typer(
    help="Read the audit trail (admins).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _when(value: str | None, option: str = "--since") -> datetime | None:
    from carbook_sdk import ValidationError

    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{option} must be a date or time like 2026-11-25 or 2026-11-25T10:00, not {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command("list")
def list_(
    car: Annotated[
        str | None, typer.Option("--car", help="Only rows about this car (an id or a unique start of it).")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Only rows by this user (an email, id or unique start of it)."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="Only this action: car.insert, car.update, car.delete, car.booked, car.released, car.cancelled.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only rows from this date or time on (ISO 8601, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only rows before this date or time (ISO 8601, UTC).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most this many rows.", min=1, max=1000)
    ] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a previous page (its next cursor).")
    ] = None,
    csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (one row per audit row) instead of a table.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """List audit rows, newest first, with each actor's email; --cursor pages on."""
    from carbook_sdk import ValidationError

    if csv and json:
        raise ValidationError("--csv and --json: choose one")
    start, end = _when(since), _when(until, "--until")
    with client() as cb:
        actor_id = cb.admin.resolve_user(actor).id if actor else None
        page = cb.audit.page(
            car_id=car_id(cb, car, signed_in=True) if car else None,
            actor_id=actor_id,
            action=action,
            since=start,
            until=end,
            limit=limit,
            cursor=cursor,
        )
        rows = page.items
        emails = _emails(cb, {r.actor_id for r in rows if r.actor_id is not None})
    if csv:
        _print_csv(rows, emails)
        return
    if json:
        print_json(
            list_json(
                [
                    {
                        **r.model_dump(mode="json"),
                        "actor_email": emails.get(r.actor_id) if r.actor_id else None,
                    }
                    for r in rows
                ],
                page.next_cursor,
            )
        )
        return
    full = full_ids(150)
    t = table("Audit log", "time", "action", "car", "actor", "change", whole=("car", "action"))
    # An email folds only past 30 characters: most stay whole and can be copied into --actor.
    t.columns[3].min_width = min(30, max((len(e) for e in emails.values()), default=8))
    ids = [r.record_id for r in rows]
    for r in rows:
        changed = _changes(r)
        who = emails.get(r.actor_id) if r.actor_id else None
        t.add_row(
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(r.action),
            short_id(r.record_id, full=full, among=ids),
            escape(who) if who else short_id(r.actor_id, full=full),
            escape(changed),
        )
    console.print(t)
    ids_note(len(rows), full=full)
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}", soft_wrap=True)


def _changes(r: Any) -> str:
    if not (r.old_data and r.new_data):
        return ""
    keys = [k for k in r.new_data if r.new_data.get(k) != r.old_data.get(k) and k != "updated_at"]
    return ", ".join(f"{k}: {r.old_data.get(k)} → {r.new_data.get(k)}" for k in keys)


def _print_csv(rows: list[Any], emails: dict[uuid.UUID, str]) -> None:
    """The rows as CSV on stdout: machine values (ISO times, whole ids), the change as JSON."""
    import csv as csv_module
    import json as json_module
    import sys

    out = csv_module.writer(sys.stdout, lineterminator="\n")
    out.writerow(
        ["id", "created_at", "action", "record_id", "actor_id", "actor_email", "old_data", "new_data"]
    )
    for r in rows:
        out.writerow(
            [
                r.id,
                r.created_at.isoformat(),
                r.action,
                r.record_id or "",
                r.actor_id or "",
                emails.get(r.actor_id, "") if r.actor_id else "",
                json_module.dumps(r.old_data, ensure_ascii=False) if r.old_data is not None else "",
                json_module.dumps(r.new_data, ensure_ascii=False) if r.new_data is not None else "",
            ]
        )


def _emails(cb: Any, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each actor's email, when the secret key is at hand to look users up (an admin
    without it sees the actor's id); a user deleted since keeps their id."""
    from carbook_sdk import ConfigurationError, NotFoundError

    found: dict[uuid.UUID, str] = {}
    for uid in user_ids:
        try:
            email = cb.admin.get_user(uid).email
        except ConfigurationError:
            return found
        except NotFoundError:
            continue
        if email:
            found[uid] = email
    return found
