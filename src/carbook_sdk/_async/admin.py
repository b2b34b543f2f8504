"""Users and roles, with the secret (service_role) key."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, TypeVar

from .._base import (
    check_email,
    check_limit,
    check_password,
    decode_key_cursor,
    encode_key_cursor,
    id_prefix,
)
from ..errors import (
    NotFoundError,
    ValidationError,
)
from ..models import AdminBooking, Page, SortOrder, User, parse_car_id, validated
from ._service import AsyncService

if TYPE_CHECKING:
    from supabase import AsyncClient

__all__ = ["AsyncAdminService", "one_match"]

T = TypeVar("T", bound=User)


class AsyncAdminService(AsyncService):
    """User and role management with the secret (service_role) key."""

    async def create_user(self, email: str, password: str, *, admin: bool = False) -> User:
        """Create a confirmed user (optionally an admin).

        Raises:
            ConfigurationError: no secret key.
            UserAlreadyExistsError: the email is taken.
            WeakPasswordError: the password is too short.
        """
        email, password = check_email(email), check_password(password)
        service = self._c._service_client()
        reply = await self._c._call(
            service.auth.admin.create_user, {"email": email, "password": password, "email_confirm": True}
        )
        user = validated(User, reply.user.model_dump())
        if admin:
            await self.grant(user.id)
        return user

    async def find_user(self, email: str) -> User:
        """The user with this email.

        Raises:
            NotFoundError: no such user.
        """
        email = check_email(email).lower()
        service = self._c._service_client()
        page = 1
        while True:
            users = await self._c._call(service.auth.admin.list_users, page=page, per_page=1000)
            for u in users:
                if (u.email or "").lower() == email:
                    return validated(User, u.model_dump())
            if len(users) < 1000:
                raise NotFoundError(f"no user with email {email!r}")
            page += 1

    async def resolve_user(self, user: uuid.UUID | str) -> User:
        """The user named by an email, an id, or a unique prefix of an id (at least 8
        hex characters, as tables show them).

        Raises:
            ValidationError: none of those (nothing is sent).
            ConfigurationError: no secret key.
            NotFoundError: no such user, or the prefix matches no user.
            ValidationError: the prefix matches more than one user (give more of it).
        """
        if isinstance(user, str) and "@" in user:
            return await self.find_user(user)
        key = id_prefix(user, "user id")
        if isinstance(key, uuid.UUID):
            return await self.get_user(key)
        service = self._c._service_client()
        low, high = key
        found: list[User] = []
        page = 1
        while True:
            users = await self._c._call(service.auth.admin.list_users, page=page, per_page=1000)
            found += [validated(User, u.model_dump()) for u in users if low <= str(u.id) <= high]
            if len(users) < 1000:
                break
            page += 1
        return one_match(found, user, "user")

    async def _service_and_user(self, user: uuid.UUID | str) -> tuple[AsyncClient, str]:
        """The service-role client and the user's id (given an id, a prefix or an email)."""
        service = self._c._service_client()
        if isinstance(user, str) and ("@" in user or isinstance(id_prefix(user, "user id"), tuple)):
            return service, str((await self.resolve_user(user)).id)
        return service, str(parse_car_id(user, "user (an email or a user id)"))

    async def bookings(
        self, *, limit: int = 50, cursor: str | None = None, order: SortOrder = "newest"
    ) -> Page[AdminBooking]:
        """Every booked car with who booked it (their email) and when (admins; no secret
        key needed), ``order`` by booking time, paged by keyset (``cursor``).

        Raises:
            ValidationError: bad limit, order or cursor (nothing is sent).
            AccessDeniedError: not an admin.
        """
        limit = check_limit(limit)
        if order not in ("newest", "oldest"):
            raise ValidationError(f"order must be 'newest' or 'oldest', not {order!r}")
        after = decode_key_cursor(cursor, 2) if cursor is not None else None
        await self._c._check_admin("listing bookings")
        desc = order == "newest"
        query = (
            (await self._c._rpc("admin_bookings", {}))
            .select("*")
            .order("booked_at", desc=desc)
            .order("car_id")
            .limit(limit + 1)
        )
        if after is not None:
            op = "lt" if desc else "gt"
            query = query.or_(
                f'booked_at.{op}."{after[0]}",and(booked_at.eq."{after[0]}",car_id.gt.{after[1]})'
            )
        rows = [validated(AdminBooking, r) for r in (await self._c._call(query.execute)).data]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_key_cursor(rows[-1].booked_at.isoformat(), rows[-1].car_id) if more else None
        return Page(items=rows, next_cursor=next_cursor)

    async def grant(self, user: uuid.UUID | str) -> None:
        """Make a user (id or email) an admin. Harmless when already one.

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = await self._service_and_user(user)
        await self._c._call(
            service.table("user_roles")
            .upsert({"user_id": user_id, "role": "admin"}, on_conflict="user_id,role", ignore_duplicates=True)
            .execute
        )

    async def revoke(self, user: uuid.UUID | str) -> None:
        """Take the admin role away from a user (id or email). Harmless when not one.

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = await self._service_and_user(user)
        await self._c._call(
            service.table("user_roles").delete().eq("user_id", user_id).eq("role", "admin").execute
        )

    async def delete_user(self, user: uuid.UUID | str) -> None:
        """Delete a user (id or email).

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = await self._service_and_user(user)
        await self._c._call(service.auth.admin.delete_user, user_id)

    async def get_user(self, user_id: uuid.UUID | str) -> User:
        """The user with this id (to name an audit row's actor, say).

        Raises:
            ValidationError: not a user id (nothing is sent).
            ConfigurationError: no secret key.
            NotFoundError: no such user (deleted since, perhaps).
        """
        uid = str(parse_car_id(user_id, "user id"))
        service = self._c._service_client()
        reply = await self._c._call(service.auth.admin.get_user_by_id, uid)
        return validated(User, reply.user.model_dump())


def one_match(found: list[T], given: object, what: str) -> T:
    """The one thing a prefix names.

    Raises:
        NotFoundError: it names nothing.
        ValidationError: it names more than one (the message lists a few).
    """
    if not found:
        raise NotFoundError(f"no {what} id starts with {given!s}")
    if len(found) > 1:
        ids = ", ".join(str(f.id) for f in found[:3])
        raise ValidationError(
            f"{given!s} matches {len(found)} {what}s ({ids}{', …' if len(found) > 3 else ''}): give more characters"
        )
    return found[0]
