"""The audit trail (admins)."""

from __future__ import annotations

import uuid
from datetime import datetime

from .._base import (
    check_limit,
    decode_key_cursor,
    encode_key_cursor,
)
from ..errors import (
    ValidationError,
)
from ..models import AuditEntry, Page, parse_car_id, validated
from ._service import AsyncService

__all__ = ["AUDIT_ACTIONS", "AsyncAuditService"]


#: Every action the audit trail records: the cars trigger's and the booking functions'.
AUDIT_ACTIONS = ("car.insert", "car.update", "car.delete", "car.booked", "car.released", "car.cancelled")


class AsyncAuditService(AsyncService):
    """The audit trail (admins)."""

    async def list(
        self,
        *,
        car_id: uuid.UUID | str | None = None,
        actor_id: uuid.UUID | str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit rows, newest first, filtered by car, actor, action and time (the first
        page of `page`).

        Raises:
            CarbookError: the errors `page` raises, for the same reasons.
        """
        found = await self.page(
            car_id=car_id, actor_id=actor_id, action=action, since=since, until=until, limit=limit
        )
        return found.items

    async def page(
        self,
        *,
        car_id: uuid.UUID | str | None = None,
        actor_id: uuid.UUID | str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        """One page of audit rows, newest first, filtered by car, actor, action (one of
        ``AUDIT_ACTIONS``) and time (``since`` inclusive, ``until`` exclusive); pass
        ``next_cursor`` back as ``cursor`` for the next page (keyset: rows written
        meanwhile never shift a page).

        Raises:
            ValidationError: malformed id, limit, cursor or time; an unknown action; ``until``
                not after ``since`` (nothing is sent).
            AccessDeniedError: not an admin.
        """
        limit = check_limit(limit)
        record = str(parse_car_id(car_id)) if car_id is not None else None
        actor = str(parse_car_id(actor_id, "user id")) if actor_id is not None else None
        if action is not None and action not in AUDIT_ACTIONS:
            raise ValidationError(f"unknown action {action!r}: the actions are {', '.join(AUDIT_ACTIONS)}")
        for name, when in (("since", since), ("until", until)):
            if when is not None and not isinstance(when, datetime):
                raise ValidationError(f"{name} must be a datetime, not {when!r}")
        if since is not None and until is not None and until <= since:
            raise ValidationError("until must be later than since")
        after = decode_key_cursor(cursor, 2) if cursor is not None else None
        # A cursor is the last row's time and id (a bigint): anything else is not one of
        # ours, and its time goes into a filter, so it must be a time and nothing more.
        if after is not None and not (_is_time(after[0]) and _is_bigint(after[1])):
            raise ValidationError(f"not a valid page cursor: {cursor!r}")
        # Before building the query: a session restored from the store must be in place.
        await self._c._check_admin("the audit log")
        query = (
            (await self._c._from("audit_logs"))
            .select("*")
            .order("created_at", desc=True)
            .order("id", desc=True)
        )
        if record is not None:
            query = query.eq("record_id", record)
        if actor is not None:
            query = query.eq("actor_id", actor)
        if action is not None:
            query = query.eq("action", action)
        if since is not None:
            query = query.gte("created_at", since.isoformat())
        if until is not None:
            query = query.lt("created_at", until.isoformat())
        if after is not None:
            query = query.or_(f'created_at.lt."{after[0]}",and(created_at.eq."{after[0]}",id.lt.{after[1]})')
        reply = await self._c._call(query.limit(limit + 1).execute)
        rows = [validated(AuditEntry, r) for r in reply.data]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_key_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more else None
        return Page(items=rows, next_cursor=next_cursor)


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return '"' not in value and "," not in value


def _is_bigint(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) < 2**63
