"""GENERATED from ``carbook_sdk/_async/auth.py`` by ``scripts/unasync.py``: edit that
file and re-run the script, never this one.

Auth: sign up, sign in and out, the current user, the admin role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._base import (
    check_email,
    check_password,
)
from ..errors import (
    CarbookConnectionError,
    InvalidCredentialsError,
    NotAuthenticatedError,
    OutcomeUnknownError,
    SessionExpiredError,
    UserAlreadyExistsError,
)
from ..models import Claims, User, validated
from ._service import Service

__all__ = ["AuthService"]


class AuthService(Service):
    """Sign up, sign in and out, the current user."""

    def sign_up(self, email: str, password: str, *, data: Mapping[str, Any] | None = None) -> User:
        """Create an account and sign in.

        Raises:
            NotAuthenticatedError: the project confirms email addresses first (the account
                exists; sign in after confirming).
            ValidationError: malformed email or empty password (nothing is sent).
            UserAlreadyExistsError: the email is taken.
            WeakPasswordError: the password is too short.
            OutcomeUnknownError: the request went out, no answer came, and asking again
                could not tell whether the account was made (a lost answer is otherwise
                resolved here: the account exists with this password → signed in).
        """
        self._c._refuse_bound("signing up")
        email, password = check_email(email), check_password(password)
        body = {"email": email, "password": password, "options": {"data": dict(data or {})}}
        try:
            reply = self._c._call(self._c._sb.auth.sign_up, body)
        except OutcomeUnknownError as lost:
            return self._sign_up_outcome(email, password, body, lost)
        return self._signed_up(reply)

    def _sign_up_outcome(
        self, email: str, password: str, body: dict[str, Any], lost: OutcomeUnknownError
    ) -> User:
        """A sign-up whose answer was lost (a busy Auth hashing many passwords at once):
        find out what happened instead of calling it unreachable. The account with this
        password signs in → it exists (this call made it); no such account → the sign-up
        never happened, so it is made again; the email taken → someone has it."""
        unknown = OutcomeUnknownError(
            f"the sign-up of {email} was sent but no answer came, and Auth could not be asked"
            " whether the account exists",
            hint="sign in with the same email and password to find out",
        )
        try:
            return self._sign_in_after_sign_up(email, password)
        except InvalidCredentialsError:
            pass  # no account with this password: the sign-up never happened
        except CarbookConnectionError:
            raise unknown from lost
        try:
            reply = self._c._call(self._c._sb.auth.sign_up, body)
            return self._signed_up(reply)
        except UserAlreadyExistsError as taken:
            # Made meanwhile by the first request (Auth was still at it), or someone
            # else's: only signing in with this password tells them apart.
            try:
                return self._sign_in_after_sign_up(email, password)
            except InvalidCredentialsError:
                raise taken from None
            except CarbookConnectionError:
                raise unknown from lost
        except CarbookConnectionError:
            raise unknown from lost

    def _sign_in_after_sign_up(self, email: str, password: str) -> User:
        try:
            return self.sign_in(email, password)
        except NotAuthenticatedError:
            # email_not_confirmed: the account exists, its address is not confirmed yet.
            raise NotAuthenticatedError(
                "account created; confirm the email address, then sign in", status=200
            ) from None

    def _signed_up(self, reply: Any) -> User:
        if reply.user is None or reply.session is None:
            # A project with email confirmations on: the account exists, the session does not.
            raise NotAuthenticatedError(
                "account created; confirm the email address, then sign in", status=200
            )
        self._c._session_checked = True  # Auth made it just now
        return validated(User, reply.user.model_dump())

    def sign_in(self, email: str, password: str) -> User:
        """Sign in with email and password.

        Raises:
            ValidationError: malformed email or empty password (nothing is sent).
            InvalidCredentialsError: wrong email or password.
        """
        self._c._refuse_bound("signing in")
        email, password = check_email(email), check_password(password)
        reply = self._c._call(
            self._c._sb.auth.sign_in_with_password, {"email": email, "password": password}
        )
        assert reply.user is not None
        self._c._session_checked = True  # Auth made it just now
        return validated(User, reply.user.model_dump())

    def sign_in_anonymously(self, *, data: Mapping[str, Any] | None = None) -> User:
        """Sign in as a new anonymous user: no email or password, ``user.is_anonymous``.

        The session is a real one (role ``authenticated``), but the schema treats it as
        anon: it lists published, available cars and cannot book or administer.

        Raises:
            AccessDeniedError: the project has anonymous sign-ins off (local stack: set
                ``[auth] enable_anonymous_sign_ins = true`` in ``supabase/config.toml``
                and restart it), or sign-ups off.
        """
        self._c._refuse_bound("signing in")
        reply = self._c._call(
            self._c._sb.auth.sign_in_anonymously, {"options": {"data": dict(data or {})}}
        )
        assert reply.user is not None
        self._c._session_checked = True  # Auth made it just now
        return validated(User, reply.user.model_dump())

    def sign_out(self) -> None:
        """End the session (everywhere) and forget it locally. Harmless when signed out, or
        when the session has already ended."""
        if self._c._bound is not None:
            return  # the caller's session is theirs to end, not a service's
        try:
            if self._c._session_token() is None:
                return
        except SessionExpiredError:
            pass  # nothing left to end on the server; supabase-py still forgets it here
        self._c._call(self._c._sb.auth.sign_out)

    def current_user(self) -> User | None:
        """The signed-in user as the server knows them, or None when signed out.

        Raises:
            SessionExpiredError: the session was ended elsewhere.
        """
        token = self._c._session_token()
        if token is None:
            return None
        reply = self._c._call(self._c._sb.auth.get_user, token)
        return validated(User, reply.user.model_dump()) if reply else None

    def refresh(self) -> User:
        """Get a new access token now.

        Raises:
            NotAuthenticatedError: not signed in.
            SessionExpiredError: the refresh token was revoked or already used.
        """
        self._c._refuse_bound("refreshing a session")
        self._c._require_user()
        with self._c._session_lock:
            reply = self._c._call(self._c._sb.auth.refresh_session)
        assert reply.user is not None
        return validated(User, reply.user.model_dump())

    def claims(self) -> Claims:
        """The signed-in user's access-token claims, verified: an asymmetric token (ES256,
        RS256) locally against the project's published keys (``/auth/v1/.well-known/jwks.json``,
        cached), a symmetric one (HS256) by asking Auth.

        Raises:
            NotAuthenticatedError: not signed in.
            SessionExpiredError: the token has expired, or its signature does not verify.
        """
        token = self._c._session_token()
        if token is None:
            raise NotAuthenticatedError("sign in first")
        reply = self._c._call(self._c._sb.auth.get_claims, token)
        if reply is None:
            raise NotAuthenticatedError("sign in first")
        return validated(Claims, dict(reply["claims"]))

    def access_token(self) -> str | None:
        """The current access token (refreshed when about to expire), or None."""
        return self._c._session_token()

    def is_admin(self) -> bool:
        """Whether the signed-in user has the admin role (False when signed out)."""
        token = self._c._session_token()
        if token is None:
            return False
        if self._c._admin_for != token:
            user_id = self._c._user_id()
            reply = self._c._call(
                self._c._from("user_roles")
                .select("role")
                .eq("user_id", user_id)
                .eq("role", "admin")
                .execute
            )
            self._c._is_admin = bool(reply.data)
            self._c._admin_for = token
        return self._c._is_admin
