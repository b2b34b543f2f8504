"""GENERATED from ``carbook_sdk/_async/audit.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

The audit trail (admins).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from .._base import (
    check_limit,
)
from ..errors import (
    ValidationError,
)
from ..models import AuditEntry, parse_car_id, validated
from ._service import Service

__all__ = ["AuditService"]


class AuditService(Service):
    """The audit trail (admins)."""

    def list(
        self,
        *,
        car_id: uuid.UUID | str | None = None,
        actor_id: uuid.UUID | str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit rows, newest first, filtered by car, actor, action and time.

        Raises:
            ValidationError: malformed id or limit.
            AccessDeniedError: not an admin.
        """
        limit = check_limit(limit)
        record = str(parse_car_id(car_id)) if car_id is not None else None
        actor = str(parse_car_id(actor_id, "user id")) if actor_id is not None else None
        if since is not None and not isinstance(since, datetime):
            raise ValidationError(f"since must be a datetime, not {since!r}")
        # Before building the query: a session restored from the store must be in place.
        self._c._check_admin("the audit log")
        query = (
            self._c._from("audit_logs")
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
        reply = self._c._call(query.limit(limit).execute)
        return [validated(AuditEntry, r) for r in reply.data]
