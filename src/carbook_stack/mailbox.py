"""The local stack's mailbox: the messages its Auth "sent" (``auth.carbook_mail``),
newest first, as Inbucket shows them for ``supabase start``."""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import BaseModel

from carbook_sdk.errors import CarbookConnectionError, ValidationError

from .manager import LocalStack

__all__ = ["Mail", "read_mail"]


class Mail(BaseModel):
    """One message: to whom, what for, the code and the link it carries."""

    id: int
    to: str
    kind: str
    subject: str
    otp: str
    link: str
    redirect_to: str
    sent_at: datetime


def read_mail(stack: LocalStack, to: str | None = None, limit: int = 20) -> list[Mail]:
    """The newest ``limit`` messages, to ``to`` only when given (any letter case).

    Raises:
        ValidationError: ``limit`` out of 1..1000.
        CarbookConnectionError: the stack's database does not answer (is it running?).
    """
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be 1 to 1000")
    if to is not None and ("\x00" in to or not to.strip()):
        raise ValidationError("--to must be an email address")
    try:
        with psycopg.connect(stack.settings.db_url, connect_timeout=5) as conn:
            exists = conn.execute("select to_regclass('auth.carbook_mail') is not null").fetchone()
            if not exists or not exists[0]:
                return []  # an app from before the mailbox: nothing was ever sent
            rows = conn.execute(
                """select id, recipient, kind, subject, otp, action_link, redirect_to, created_at
                     from auth.carbook_mail
                    where %(to)s::text is null or lower(recipient) = lower(%(to)s::text)
                    order by id desc limit %(limit)s""",
                {"to": to, "limit": limit},
            ).fetchall()
    except psycopg.OperationalError:
        raise CarbookConnectionError(
            "the local stack's database does not answer", hint="`carbook stack start` starts it"
        ) from None
    return [
        Mail(id=r[0], to=r[1], kind=r[2], subject=r[3], otp=r[4], link=r[5], redirect_to=r[6], sent_at=r[7])
        for r in rows
    ]
