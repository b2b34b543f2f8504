"""``/storage/v1``: buckets and objects as Supabase Storage serves them.

Every statement on ``storage.buckets``/``storage.objects`` runs under the caller's JWT
role with ``request.jwt.claims`` set, so the storage RLS policies decide, as on hosted
Supabase (``access``). Errors have Storage's shape (``errors``). Bytes live in files
named by version, never by object name (``store``); uploads stream to disk and become
visible only when their row commits (``upload``).
"""

from __future__ import annotations

from starlette.routing import Route

from ..gateway import endpoint
from .access import check_name
from .buckets import bucket_detail, create_bucket, empty_bucket, list_buckets
from .download import download_object, public_object
from .errors import StorageError
from .objects import copy_object, list_objects, move_object, object_info, remove_objects
from .signing import sign_object, sign_objects, signed_object
from .upload import upload_object

__all__ = ["StorageError", "check_name", "routes"]


def routes() -> list[Route]:
    """The routes under ``/storage/v1``, each behind ``endpoint``: the apikey check (not for
    public and signed object URLs) and Storage's error shape for whatever goes wrong."""
    return [
        Route("/bucket", endpoint(list_buckets, StorageError), methods=["GET"]),
        Route("/bucket", endpoint(create_bucket, StorageError), methods=["POST"]),
        Route("/bucket/{bucket}/empty", endpoint(empty_bucket, StorageError), methods=["POST"]),
        Route("/bucket/{bucket}", endpoint(bucket_detail, StorageError), methods=["GET", "PUT", "DELETE"]),
        Route("/object/list/{bucket}", endpoint(list_objects, StorageError), methods=["POST"]),
        Route("/object/move", endpoint(move_object, StorageError), methods=["POST"]),
        Route("/object/copy", endpoint(copy_object, StorageError), methods=["POST"]),
        Route("/object/info/{bucket}/{name:path}", endpoint(object_info, StorageError), methods=["GET"]),
        Route(
            "/object/public/{bucket}/{name:path}",
            endpoint(public_object, StorageError, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/object/sign/{bucket}/{name:path}",
            endpoint(signed_object, StorageError, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route("/object/sign/{bucket}/{name:path}", endpoint(sign_object, StorageError), methods=["POST"]),
        Route("/object/sign/{bucket}", endpoint(sign_objects, StorageError), methods=["POST"]),
        Route(
            "/object/authenticated/{bucket}/{name:path}",
            endpoint(download_object, StorageError),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/object/{bucket}/{name:path}", endpoint(download_object, StorageError), methods=["GET", "HEAD"]
        ),
        Route("/object/{bucket}/{name:path}", endpoint(upload_object, StorageError), methods=["POST", "PUT"]),
        Route("/object/{bucket}", endpoint(remove_objects, StorageError), methods=["DELETE"]),
    ]
