"""Storage's error replies: HTTP 400 with the real code as a string in ``statusCode``
(as Supabase Storage answers), except bad or missing tokens, which are refused with 401,
and database failures: 503 when the database cannot be reached, else 500."""

from __future__ import annotations

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..service import ServiceError, database_unavailable

__all__ = [
    "StorageError",
    "bucket_not_found",
    "invalid_request",
    "not_found",
    "too_large",
    "unauthorized",
]


class StorageError(ServiceError):
    def __init__(self, status: str, error: str, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message, self.http_status = (
            status,
            error,
            code,
            message,
            http_status,
        )

    @classmethod
    def bad_path(cls) -> StorageError:
        # What hosted Storage answers when decodeURIComponent fails on an object's name.
        return cls("400", "InvalidKey", "InvalidKey", "The request path is not valid UTF-8")

    @classmethod
    def from_database(cls, exc: psycopg.Error) -> StorageError:
        """What Storage answers for a database error no handler expected."""
        if database_unavailable(exc):
            return cls(
                "503", "Service Unavailable", "DatabaseError", "The database is unavailable", http_status=503
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return cls("403", "Unauthorized", "AccessDenied", "new row violates row-level security policy")
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return cls("409", "Duplicate", "KeyAlreadyExists", "The resource already exists")
        if isinstance(exc, psycopg.errors.ForeignKeyViolation):
            return bucket_not_found()
        if isinstance(exc, psycopg.errors.InvalidTextRepresentation):
            # A value the database cannot read as its type: a token whose ``sub`` is no
            # UUID meets ``auth.uid()`` in a policy. PostgREST answers the same with 400.
            return cls("400", "Invalid Input", "InvalidRequest", exc.diag.message_primary or "invalid input")
        return cls("500", "internal", "InternalError", "Internal Server Error", http_status=500)

    @classmethod
    def busy(cls) -> StorageError:
        return cls(
            "503", "Service Unavailable", "SlowDown", "The service is busy, please try again", http_status=503
        )

    @classmethod
    def unexpected(cls, request_id: str) -> StorageError:
        return cls(
            "500",
            "internal",
            "InternalError",
            f"Internal Server Error (request {request_id})",
            http_status=500,
        )

    def response(self, request: Request | None = None) -> JSONResponse:
        return JSONResponse(
            {"statusCode": self.status, "error": self.error, "code": self.code, "message": self.message},
            status_code=self.http_status,
        )


def not_found() -> StorageError:
    return StorageError("404", "not_found", "NoSuchKey", "Object not found")


def bucket_not_found() -> StorageError:
    return StorageError("404", "Bucket not found", "NoSuchBucket", "Bucket not found")


def too_large(limit: int | None = None) -> StorageError:
    """Storage's 413; with the limit in force named, so a person knows what fits."""
    said = "The object exceeded the maximum allowed size"
    if limit is not None:
        said += f" ({_size(limit)})"
    return StorageError("413", "Payload too large", "EntityTooLarge", said)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n:,} bytes"


def no_route(method: str, path: str) -> StorageError:
    """What Storage answers a method and path (under /storage/v1) no route has: 404."""
    return StorageError(
        "404", "Not Found", "InvalidRequest", f"Route {method}:{path} not found", http_status=404
    )


def unauthorized(message: str) -> StorageError:
    return StorageError("401", "Unauthorized", "InvalidJWT", message, http_status=401)


def invalid_request(message: str) -> StorageError:
    return StorageError("400", "InvalidRequest", "InvalidRequest", message)
