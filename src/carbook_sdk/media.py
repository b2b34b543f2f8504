"""Image types by content: what the SDK checks before an upload and the local stack's
Storage checks on arrival. Public, so both use the same rule."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["IMAGE_TYPES", "detect_image_type"]

#: (mime type, file extension, test of the first bytes), for every image type carbook knows.
IMAGE_TYPES: tuple[tuple[str, str, Callable[[bytes], bool]], ...] = (
    ("image/jpeg", "jpg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image/png", "png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/webp", "webp", lambda b: len(b) >= 12 and b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("image/gif", "gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),
    ("image/avif", "avif", lambda b: b[4:12] in (b"ftypavif", b"ftypavis")),
    ("image/heic", "heic", lambda b: b[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1")),
    ("image/bmp", "bmp", lambda b: b[:2] == b"BM"),
    ("image/tiff", "tiff", lambda b: b[:4] in (b"II*\x00", b"MM\x00*")),
)


def detect_image_type(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) from the file's first bytes, whatever its name says."""
    for mime, ext, test in IMAGE_TYPES:
        if test(data):
            return mime, ext
    return None
