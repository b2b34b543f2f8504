"""``/storage/v1``: buckets and objects as Supabase Storage serves them.

Every statement on ``storage.buckets``/``storage.objects`` runs under the caller's JWT
role with ``request.jwt.claims`` set, so the storage RLS policies decide, as on hosted
Supabase (``access``). Errors have Storage's shape (``errors``). Bytes live in files
named by version, never by object name (``store``); uploads stream to disk and become
visible only when their row commits (``upload``). Routing is exact: a method and path
Storage has no route for is a 404 in its error shape, never another route.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..service import AppState, endpoint
from .access import check_name
from .buckets import bucket_detail, create_bucket, empty_bucket, list_buckets
from .download import download_object, public_object
from .errors import StorageError, no_route
from .listing import list_objects_v2
from .objects import (
    copy_object,
    delete_object,
    list_objects,
    move_object,
    object_info,
    public_object_info,
    remove_objects,
)
from .signing import sign_object, sign_objects, sign_upload, signed_object
from .upload import upload_object, upload_signed_object

__all__ = ["StorageError", "check_name", "routes"]

#: First segments under ``/object/`` that name a route, never a bucket: a path that
#: starts with one and matches none of its routes is an unknown route, not a request
#: about a bucket called "upload" or "info".
ROUTE_WORDS = ("authenticated", "copy", "info", "list", "list-v2", "move", "public", "sign", "upload")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _BucketConvertor(Convertor[str]):
    """A bucket id in a path: one segment, not one of ``ROUTE_WORDS``."""

    regex = "(?!(?:" + "|".join(w.replace("-", "\\-") for w in ROUTE_WORDS) + ")(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("bucket", _BucketConvertor())


async def route_not_found(request: Request, state: AppState) -> Response:
    """What Storage answers a method and path no route has: 404, in its error shape."""
    raise no_route(request.method, request.url.path.removeprefix("/storage/v1"))


def routes() -> list[Route]:
    """The routes under ``/storage/v1``, each behind ``endpoint``: the apikey check (not for
    public and signed object URLs) and Storage's error shape for whatever goes wrong.

    The routes with words of their own come first, and the generic ``/object/{bucket}…``
    ones take no route word as the bucket, so a path is served by the route Storage
    serves it with, or by none: the last route answers 404 for anything else.
    """
    obj = "{bucket}/{name:path}"  # after a route's own words: any bucket
    any_obj = "{bucket:bucket}/{name:path}"  # right after /object/: not a route word
    return [
        Route("/bucket", endpoint(list_buckets, StorageError), methods=["GET"]),
        Route("/bucket", endpoint(create_bucket, StorageError), methods=["POST"]),
        Route("/bucket/{bucket}/empty", endpoint(empty_bucket, StorageError), methods=["POST"]),
        Route("/bucket/{bucket}", endpoint(bucket_detail, StorageError), methods=["GET", "PUT", "DELETE"]),
        Route("/object/list/{bucket}", endpoint(list_objects, StorageError), methods=["POST"]),
        Route("/object/list-v2/{bucket}", endpoint(list_objects_v2, StorageError), methods=["POST"]),
        Route("/object/move", endpoint(move_object, StorageError), methods=["POST"]),
        Route("/object/copy", endpoint(copy_object, StorageError), methods=["POST"]),
        Route(
            f"/object/info/public/{obj}",
            endpoint(public_object_info, StorageError, needs_key=False),
            methods=["GET"],
        ),
        Route(f"/object/info/authenticated/{obj}", endpoint(object_info, StorageError), methods=["GET"]),
        Route(f"/object/info/{obj}", endpoint(object_info, StorageError), methods=["GET"]),
        Route(
            f"/object/public/{obj}",
            endpoint(public_object, StorageError, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route(
            f"/object/sign/{obj}",
            endpoint(signed_object, StorageError, needs_key=False),
            methods=["GET", "HEAD"],
        ),
        Route(f"/object/sign/{obj}", endpoint(sign_object, StorageError), methods=["POST"]),
        Route("/object/sign/{bucket}", endpoint(sign_objects, StorageError), methods=["POST"]),
        Route(f"/object/upload/sign/{obj}", endpoint(sign_upload, StorageError), methods=["POST"]),
        Route(
            f"/object/upload/sign/{obj}",
            endpoint(upload_signed_object, StorageError, needs_key=False),
            methods=["PUT"],
        ),
        Route(
            f"/object/authenticated/{obj}",
            endpoint(download_object, StorageError),
            methods=["GET", "HEAD"],
        ),
        Route(f"/object/{any_obj}", endpoint(download_object, StorageError), methods=["GET", "HEAD"]),
        Route(f"/object/{any_obj}", endpoint(upload_object, StorageError), methods=["POST", "PUT"]),
        Route(f"/object/{any_obj}", endpoint(delete_object, StorageError), methods=["DELETE"]),
        Route("/object/{bucket:bucket}", endpoint(remove_objects, StorageError), methods=["DELETE"]),
        Route("/{path:path}", endpoint(route_not_found, StorageError), methods=ALL_METHODS),
    ]
