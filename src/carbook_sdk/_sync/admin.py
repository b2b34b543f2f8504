"""GENERATED from ``carbook_sdk/_async/admin.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

Users and roles, with the secret (service_role) key.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .._base import (
    check_email,
    check_password,
)
from ..errors import (
    NotFoundError,
)
from ..models import User, parse_car_id, validated
from ._service import Service

if TYPE_CHECKING:
    from supabase import Client

__all__ = ["AdminService"]


class AdminService(Service):
    """User and role management with the secret (service_role) key."""

    def create_user(self, email: str, password: str, *, admin: bool = False) -> User:
        """Create a confirmed user (optionally an admin).

        Raises:
            ConfigurationError: no secret key.
            UserAlreadyExistsError: the email is taken.
            WeakPasswordError: the password is too short.
        """
        email, password = check_email(email), check_password(password)
        service = self._c._service_client()
        reply = self._c._call(
            service.auth.admin.create_user, {"email": email, "password": password, "email_confirm": True}
        )
        user = validated(User, reply.user.model_dump())
        if admin:
            self.grant(user.id)
        return user

    def find_user(self, email: str) -> User:
        """The user with this email.

        Raises:
            NotFoundError: no such user.
        """
        email = check_email(email).lower()
        service = self._c._service_client()
        page = 1
        while True:
            users = self._c._call(service.auth.admin.list_users, page=page, per_page=1000)
            for u in users:
                if (u.email or "").lower() == email:
                    return validated(User, u.model_dump())
            if len(users) < 1000:
                raise NotFoundError(f"no user with email {email!r}")
            page += 1

    def _service_and_user(self, user: uuid.UUID | str) -> tuple[Client, str]:
        """The service-role client and the user's id (given an id or an email)."""
        service = self._c._service_client()
        if isinstance(user, str) and "@" in user:
            return service, str(self.find_user(user).id)
        return service, str(parse_car_id(user, "user (an email or a user id)"))

    def grant(self, user: uuid.UUID | str) -> None:
        """Make a user (id or email) an admin. Harmless when already one.

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        self._c._call(
            service.table("user_roles")
            .upsert({"user_id": user_id, "role": "admin"}, on_conflict="user_id,role", ignore_duplicates=True)
            .execute
        )

    def revoke(self, user: uuid.UUID | str) -> None:
        """Take the admin role away from a user (id or email). Harmless when not one.

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        self._c._call(
            service.table("user_roles").delete().eq("user_id", user_id).eq("role", "admin").execute
        )

    def delete_user(self, user: uuid.UUID | str) -> None:
        """Delete a user (id or email).

        Raises:
            ConfigurationError: no secret key.
            NotFoundError: no such user.
        """
        service, user_id = self._service_and_user(user)
        self._c._call(service.auth.admin.delete_user, user_id)

    def get_user(self, user_id: uuid.UUID | str) -> User:
        """The user with this id (to name an audit row's actor, say).

        Raises:
            ValidationError: not a user id (nothing is sent).
            ConfigurationError: no secret key.
            NotFoundError: no such user (deleted since, perhaps).
        """
        uid = str(parse_car_id(user_id, "user id"))
        service = self._c._service_client()
        reply = self._c._call(service.auth.admin.get_user_by_id, uid)
        return validated(User, reply.user.model_dump())
