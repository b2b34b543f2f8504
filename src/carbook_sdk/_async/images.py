"""Images: validated by content, uploaded to the car-images bucket, removed."""

from __future__ import annotations

from pathlib import Path

from storage3.types import CreateSignedUploadUrlOptions

from .._base import (
    ImageFile,
    check_image_name,
    image_name,
    load_image,
)
from ..errors import (
    AccessDeniedError,
    CarbookError,
    NotFoundError,
)
from ..models import SignedUpload
from ._service import AsyncService

__all__ = ["AsyncImagesService"]


class AsyncImagesService(AsyncService):
    """Car images in the ``car-images`` bucket: validated by content, uploaded, removed."""

    def validate(self, image: Path | str | bytes) -> ImageFile:
        """Check an image without sending it: type by magic bytes, size by the bucket's limit.

        Raises:
            ValidationError: missing or empty file.
            ImageTooLargeError: over the bucket's limit.
            UnsupportedImageTypeError: not a JPEG, PNG or WebP by content.
        """
        s = self._c.settings
        return load_image(image, max_bytes=s.image_max_bytes, allowed=s.image_types)

    async def upload(self, image: Path | str | bytes | ImageFile, *, name: str | None = None) -> str:
        """Validate and upload an image (admins); returns its path in the bucket.

        Raises:
            ValidationError, ImageTooLargeError, UnsupportedImageTypeError: before sending.
            NotAuthenticatedError: not signed in.
            AccessDeniedError: not an admin (storage policies refuse it).
        """
        img = image if isinstance(image, ImageFile) else self.validate(image)
        path = image_name(img, name)
        await self._c._require_user()
        await self._c._call(
            (await self._c._bucket()).upload,
            path,
            img.data,
            {"content-type": img.mime, "cache-control": "3600"},
        )
        return path

    async def create_signed_upload(self, name: str, *, upsert: bool = False) -> SignedUpload:
        """A signed URL to upload one image to ``name`` later, without signing in (admins).

        Whoever holds the URL can ``PUT`` the image to it once, within its lifetime (two
        hours on Supabase); the bucket's size and type limits still apply, and the image
        is stored as this admin's. Then ``cars.create(..., image_path=name)`` adds the car.
        ``upsert``: the upload may replace an image already at ``name``.

        Raises:
            ValidationError: not a valid image name (nothing is sent).
            NotAuthenticatedError: not signed in.
            AccessDeniedError: not an admin (storage policies refuse it).
            ConflictError: an image is already at ``name`` and ``upsert`` is False.
        """
        path = check_image_name(name)
        await self._c._require_user()
        options = CreateSignedUploadUrlOptions(upsert="true") if upsert else None
        bucket = await self._c._bucket()
        try:
            signed = await self._c._call(bucket.create_signed_upload_url, path, options)
        except AccessDeniedError:
            await self._c._check_admin("creating a signed upload URL")  # say so plainly
            raise
        return SignedUpload(path=path, url=signed["signed_url"], token=signed["token"])

    async def exists(self, path: str) -> bool:
        """Whether an image is at ``path`` in the bucket.

        Raises:
            ValidationError: not a valid image name (nothing is sent).
        """
        path = check_image_name(path)
        return bool(await self._c._call((await self._c._bucket()).exists, path))

    def public_url(self, path: str) -> str:
        """The image's public URL (any browser can fetch it)."""
        return self._c._public_url(path)

    async def delete(self, path: str) -> None:
        """Delete an image (admins).

        Raises:
            NotFoundError: no such image, or not allowed to delete it.
        """
        await self._c._require_user()
        removed = await self._c._call((await self._c._bucket()).remove, [path])
        if not removed:
            raise NotFoundError(f"image {path!r} not found (or not yours to delete)")

    async def _delete_quietly(self, path: str) -> str | None:
        """Compensation: delete an upload; returns why it failed, if it did."""
        try:
            await self.delete(path)
        except CarbookError as exc:
            return str(exc)
        return None
