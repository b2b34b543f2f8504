"""Image types by content: what the SDK checks before an upload and the local stack's
Storage checks on arrival. Public, so both use the same rule."""

from __future__ import annotations

from collections.abc import Callable, Collection

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
    ("image/x-icon", "ico", lambda b: b[:4] == b"\x00\x00\x01\x00"),
    ("image/vnd.microsoft.icon", "ico", lambda b: b[:4] == b"\x00\x00\x01\x00"),
    # Text: an XML declaration or the svg element first (after a byte-order mark or spaces).
    ("image/svg+xml", "svg", lambda b: b.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"<?xml", b"<svg"))),
)


def detect_image_type(data: bytes, allowed: Collection[str] = ()) -> tuple[str, str] | None:
    """(mime, extension) from the file's first bytes, whatever its name says; of the types
    that share a signature (the two names of an icon), the first ``allowed`` one."""
    found = [(mime, ext) for mime, ext, test in IMAGE_TYPES if test(data)]
    for mime, ext in found:
        if mime in allowed:
            return mime, ext
    return found[0] if found else None
