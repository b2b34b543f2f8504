"""The HTTP side of every Auth route: GoTrue's error shape, the JSON body, the caller's token."""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..service import (
    MAX_JSON_BODY,
    AppState,
    InvalidInput,
    ServiceError,
    bearer_of,
    database_unavailable,
    load_json,
    read_limited,
)
from ..tokens import Caller, TokenError, verify_token

__all__ = ["API_VERSION", "AuthError", "caller_of", "error_response", "json_body"]

API_VERSION = "2024-01-01"


class AuthError(ServiceError):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self, request: Request) -> Response:
        return error_response(request, self)

    @classmethod
    def from_database(cls, exc: psycopg.Error) -> AuthError:
        """What GoTrue answers when its database fails: ``unexpected_failure``. A 503 for an
        outage makes supabase-py raise ``AuthRetryableError``, as a network failure does."""
        if database_unavailable(exc):
            return cls(503, "unexpected_failure", "The database is unavailable")
        return cls(
            500, "unexpected_failure", "Unexpected failure, please check server logs for more information"
        )

    @classmethod
    def bad_path(cls) -> AuthError:
        return cls(400, "validation_failed", "The request path is not valid UTF-8")

    @classmethod
    def busy(cls) -> AuthError:
        return cls(503, "unexpected_failure", "The service is busy, please try again")

    @classmethod
    def unexpected(cls, request_id: str) -> AuthError:
        """GoTrue's 500, with the request's id as its ``error_id``."""
        return cls(
            500,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
            error_id=request_id,
        )


def error_response(request: Request, err: AuthError) -> JSONResponse:
    """GoTrue's error body: the 2024-01-01 shape when the client asks for it, else the legacy one."""
    if request.headers.get("x-supabase-api-version", "") >= API_VERSION:
        body: dict[str, Any] = {"code": err.code, "message": err.message, **err.extra}
    else:
        body = {"code": err.status, "error_code": err.code, "msg": err.message, **err.extra}
    return JSONResponse(
        body,
        status_code=err.status,
        headers={"X-Supabase-Api-Version": API_VERSION, "x-sb-error-code": err.code},
    )


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, MAX_JSON_BODY)
    if raw is None:
        raise AuthError(413, "request_too_large", "Request body too large")
    if not raw.strip():
        return {}
    try:
        data = load_json(raw)
    except InvalidInput as exc:
        if exc.kind == "syntax":
            raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {exc.message}") from None
        raise AuthError(400, "validation_failed", f"Invalid request body: {exc.message}") from None
    if not isinstance(data, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return data


def caller_of(request: Request, state: AppState) -> Caller:
    token = bearer_of(request)
    if not token:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        return verify_token(token, state.keys)
    except TokenError as exc:
        raise AuthError(403, "bad_jwt", f"invalid JWT: {exc}") from None
