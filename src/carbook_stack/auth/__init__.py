"""``/auth/v1``: the subset of Supabase Auth (GoTrue) that supabase-py uses.

Same paths, JSON shapes and error codes as GoTrue, so ``supabase_auth`` builds its
``Session``/``User`` models and raises ``AuthApiError`` with the right ``code``.
Passwords are bcrypt hashes in ``auth.users`` (``users``); a user's own routes are in
``sessions``, the service role's in ``admin``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.routing import Route

from ..service import endpoint
from . import links, mail
from .admin import admin_create_user, admin_list_users, admin_user
from .http import AuthError
from .keys import jwks
from .links import generate_link, verify
from .sessions import get_user, health, logout, settings, signup, token, update_user
from .users import check_email

__all__ = ["AuthError", "check_email", "prepare", "routes"]


async def prepare(conn: psycopg.AsyncConnection[Any]) -> None:
    """Auth's own tables (one-time tokens, the local mailbox), as GoTrue migrates its own."""
    await links.prepare(conn)
    await mail.prepare(conn)


def routes() -> list[Route]:
    """The routes under ``/auth/v1``, each behind ``endpoint``: the apikey check and
    GoTrue's error shape for whatever goes wrong."""
    return [
        Route("/health", endpoint(health, AuthError), methods=["GET"]),
        Route("/.well-known/jwks.json", endpoint(jwks, AuthError, needs_key=False), methods=["GET", "HEAD"]),
        Route("/settings", endpoint(settings, AuthError), methods=["GET"]),
        Route("/signup", endpoint(signup, AuthError), methods=["POST"]),
        Route("/token", endpoint(token, AuthError), methods=["POST"]),
        Route("/user", endpoint(get_user, AuthError), methods=["GET"]),
        Route("/user", endpoint(update_user, AuthError), methods=["PUT"]),
        Route("/logout", endpoint(logout, AuthError), methods=["POST"]),
        Route("/verify", endpoint(verify, AuthError, needs_key=False), methods=["GET"]),
        Route("/verify", endpoint(verify, AuthError), methods=["POST"]),
        Route("/otp", endpoint(mail.otp, AuthError), methods=["POST"]),
        Route("/magiclink", endpoint(mail.magiclink, AuthError), methods=["POST"]),
        Route("/recover", endpoint(mail.recover, AuthError), methods=["POST"]),
        Route("/resend", endpoint(mail.resend, AuthError), methods=["POST"]),
        Route("/admin/generate_link", endpoint(generate_link, AuthError), methods=["POST"]),
        Route("/admin/users", endpoint(admin_create_user, AuthError), methods=["POST"]),
        Route("/admin/users", endpoint(admin_list_users, AuthError), methods=["GET"]),
        Route("/admin/users/{user_id}", endpoint(admin_user, AuthError), methods=["GET", "PUT", "DELETE"]),
    ]
