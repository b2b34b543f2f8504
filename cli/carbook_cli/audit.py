"""`carbook audit`: read the audit trail (admins)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .context import client
from .output import console, escape, full_ids, ids_note, list_json, print_json, short_id, table

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
    """List audit rows, newest first, with each actor's email."""
    when = _since(since)
    with client() as cb:
        actor_id = cb.admin.find_user(actor).id if actor else None
        rows = cb.audit.list(car_id=car, actor_id=actor_id, action=action, since=when, limit=limit)
        emails = _emails(cb, {r.actor_id for r in rows if r.actor_id is not None})
    if json:
        print_json(
            list_json(
                [
                    {
                        **r.model_dump(mode="json"),
                        "actor_email": emails.get(r.actor_id) if r.actor_id else None,
                    }
                    for r in rows
                ]
            )
        )
        return
    full = full_ids(150)
    t = table("Audit log", "time", "action", "car", "actor", "change", whole=("car", "action"))
    # An email folds only past 30 characters: most stay whole and can be copied into --actor.
    t.columns[3].min_width = min(30, max((len(e) for e in emails.values()), default=8))
    for r in rows:
        changed = ""
        if r.old_data and r.new_data:
            keys = [k for k in r.new_data if r.new_data.get(k) != r.old_data.get(k) and k != "updated_at"]
            changed = ", ".join(f"{k}: {r.old_data.get(k)} → {r.new_data.get(k)}" for k in keys)
        who = emails.get(r.actor_id) if r.actor_id else None
        t.add_row(
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(r.action),
            short_id(r.record_id, full=full),
            escape(who) if who else short_id(r.actor_id, full=full),
            escape(changed),
        )
    console.print(t)
    ids_note(len(rows), full=full)


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
