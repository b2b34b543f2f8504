"""Import files: a CSV of cars, every row checked before anything is sent.

``cars.import_csv`` (both clients) reads a file with this module, then creates the cars
that are not there yet; the CLI only renders what it gets back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import CarbookError, ValidationError
from .models import NewCar, validated
from .money import Money

__all__ = [
    "IMPORT_COLUMNS",
    "ImportFailure",
    "ImportFileError",
    "ImportReport",
    "ImportRow",
    "ImportedCar",
    "ProgressCallback",
    "RowProblem",
    "SkippedRow",
    "read_import_file",
]

#: The columns an import file must have (``published`` may follow).
IMPORT_COLUMNS = ("ref", "make", "model", "year", "price", "currency", "image")

#: Called after each row is done: ``(rows done, rows to do)``.
ProgressCallback = Callable[[int, int], None]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class RowProblem(_Result):
    """A row that cannot be imported as it is, and why."""

    line: int
    reason: str


class ImportFileError(ValidationError):
    """The import file has bad rows; nothing was imported."""

    code = "import_file_invalid"

    def __init__(self, message: str | None = None, *, problems: list[RowProblem], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "problems": [p.model_dump() for p in self.problems]}


@dataclass(frozen=True)
class ImportRow:
    """A checked row: the car to create and its image file."""

    line: int
    ref: str
    car: NewCar
    image: Path


class ImportedCar(_Result):
    line: int
    ref: str
    id: str


class SkippedRow(_Result):
    line: int
    ref: str


class ImportFailure(_Result):
    line: int
    ref: str
    reason: str


class ImportReport(_Result):
    """What an import did: every row is in exactly one list, in file order."""

    imported: tuple[ImportedCar, ...] = ()
    #: Rows whose ``ref`` was already imported (by an earlier run, or meanwhile by someone else).
    skipped: tuple[SkippedRow, ...] = ()
    failed: tuple[ImportFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def _first_line(last_line: int, raw: dict[str | None, Any]) -> int:
    """The line a CSV record starts on, from the line it ends on and its quoted line breaks."""
    values = [v for v in raw.values() if isinstance(v, str)]
    values += [x for v in raw.values() if isinstance(v, list) for x in v if isinstance(x, str)]
    return last_line - sum(v.count("\n") for v in values)


def read_import_file(
    path: Path | str, images_dir: Path | str, validate_image: Callable[[Path], object]
) -> list[ImportRow]:
    """Every row of an import file, checked (images too) before anything is sent.

    Raises:
        ValidationError: the file cannot be read, lacks a column, or has no rows.
        ImportFileError: some rows are bad; ``problems`` names each by line.
    """
    path, images_dir = Path(path), Path(images_dir)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    # The reader counts physical lines itself, so blank lines and quoted line breaks
    # inside a field do not shift the line numbers reported back.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(
            f"{path} lacks column(s) {', '.join(missing)}; expected {', '.join(IMPORT_COLUMNS)} [, published]"
        )
    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for raw in reader:
        n = _first_line(reader.line_num, raw)
        try:
            rows.append(_row(n, raw, images_dir, validate_image, seen))
        except (ValueError, CarbookError) as exc:
            problems.append(RowProblem(line=n, reason=str(exc)))
    if problems:
        raise ImportFileError(
            f"{len(problems)} bad row(s) in {path}; fix them and run again (nothing was imported)",
            problems=problems,
        )
    if not rows:
        raise ValidationError(f"{path} has no rows")
    return rows


def _row(
    n: int,
    raw: dict[str | None, Any],
    images_dir: Path,
    validate_image: Callable[[Path], object],
    seen: dict[str, int],
) -> ImportRow:
    ref = (raw.get("ref") or "").strip()
    if not ref:
        raise ValueError("ref is empty")
    if ref in seen:
        raise ValueError(f"ref {ref!r} already on line {seen[ref]}")
    published = (raw.get("published") or "").strip().lower()
    if published not in ("", "true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"published must be true or false, not {published!r}")
    year = (raw.get("year") or "").strip()
    if not year.isdigit():
        raise ValueError(f"year must be a number, not {year!r}")
    car = validated(
        NewCar,
        make=raw.get("make") or "",
        model=raw.get("model") or "",
        year=int(year),
        price=Money.of((raw.get("price") or "").strip(), (raw.get("currency") or "").strip()),
        is_published=published in ("true", "yes", "1"),
        ref=ref,
    )
    image_name = (raw.get("image") or "").strip()
    if not image_name or "/" in image_name or image_name in (".", ".."):
        raise ValueError(f"image must be a file name inside the images folder, not {image_name!r}")
    image = images_dir / image_name
    validate_image(image)
    seen[ref] = n
    return ImportRow(line=n, ref=ref, car=car, image=image)
