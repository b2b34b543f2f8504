"""Import files: a CSV of cars, every row checked before anything is sent.

``cars.import_csv`` (both clients) reads a file with this module, then creates the cars
that are not there yet; the CLI only renders what it gets back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import CarbookError, ValidationError
from .models import Car, NewCar, validated
from .money import Money

__all__ = [
    "IMPORT_COLUMNS",
    "DifferentRow",
    "ImportFailure",
    "ImportFile",
    "ImportFileError",
    "ImportReport",
    "ImportRow",
    "ImportStop",
    "ImportedCar",
    "ProgressCallback",
    "RowProblem",
    "SkippedRow",
    "differences",
    "field_names",
    "read_import_file",
]

#: The columns an import file must have (``published`` may follow).
IMPORT_COLUMNS = ("ref", "make", "model", "year", "price", "currency", "image")
_ALL_COLUMNS = (*IMPORT_COLUMNS, "published")
#: The separators a header line may use: comma, and what spreadsheets save as "CSV" elsewhere.
_DELIMITERS = (",", ";", "\t")

#: Called after each row is done: ``(rows done, rows to do)``.
ProgressCallback = Callable[[int, int], None]


class ImportStop:
    """Asks a running import to stop: from a signal handler, another thread or task.

    After ``request()`` no further row starts; rows already started finish (their car is
    created, or their image is removed again), since stopping an upload or an insert
    halfway could leave an image without a car. The import then returns its report with
    ``interrupted`` set and the rows it did not start in ``not_started``. Running the same
    import again resumes it: rows whose ``ref`` exists are skipped.
    """

    def __init__(self) -> None:
        self.requests = 0

    def request(self) -> int:
        """Ask to stop; returns how many times it has been asked (a signal handler may
        say more the second time)."""
        self.requests += 1
        return self.requests

    @property
    def requested(self) -> bool:
        return self.requests > 0


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class RowProblem(_Result):
    """A row that cannot be imported as it is, and why."""

    line: int
    reason: str


class ImportFileError(ValidationError):
    """The import file has bad rows; nothing was imported."""

    code = "import_file_invalid"

    def __init__(
        self,
        message: str | None = None,
        *,
        problems: list[RowProblem],
        warnings: tuple[str, ...] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.problems = problems
        self.warnings = warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "problems": [p.model_dump() for p in self.problems],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ImportRow:
    """A checked row: the car to create and its image file."""

    line: int
    ref: str
    car: NewCar
    image: Path
    #: Whether the row says ``published`` (else an existing car's is left as it is).
    published_given: bool = False


@dataclass(frozen=True)
class ImportFile:
    """A checked import file: its rows, and what it has that an import ignores."""

    rows: tuple[ImportRow, ...]
    warnings: tuple[str, ...] = ()


class ImportedCar(_Result):
    line: int
    ref: str
    id: str


class SkippedRow(_Result):
    line: int
    ref: str


class DifferentRow(_Result):
    """A row whose ``ref`` exists with other data: the fields that differ (``price``, ``model`` …)."""

    line: int
    ref: str
    id: str
    fields: tuple[str, ...]


class ImportFailure(_Result):
    line: int
    ref: str
    reason: str


class ImportReport(_Result):
    """What an import did: every row is in exactly one list, in file order."""

    imported: tuple[ImportedCar, ...] = ()
    #: Rows whose ``ref`` exists with the same data (imported by an earlier run, or meanwhile).
    skipped: tuple[SkippedRow, ...] = ()
    #: Rows whose ``ref`` exists with other data, left as they are (without ``update``).
    different: tuple[DifferentRow, ...] = ()
    #: Rows whose ``ref`` existed with other data, changed to the file's (with ``update``).
    updated: tuple[DifferentRow, ...] = ()
    failed: tuple[ImportFailure, ...] = ()
    #: Rows not started because the import was asked to stop (see `ImportStop`).
    not_started: tuple[SkippedRow, ...] = ()
    #: What the file has that the import ignored (extra columns), each said once.
    warnings: tuple[str, ...] = ()
    #: The import was asked to stop before every row was done: run it again to resume.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Every row is in the database as the file says."""
        return not (self.failed or self.different or self.not_started)


def _first_line(last_line: int, values: list[str]) -> int:
    """The line a CSV record starts on, from the line it ends on and its quoted line breaks."""
    return last_line - sum(v.count("\n") for v in values)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationError(
            f"{path} is not UTF-8: line {line} has the byte 0x{data[exc.start]:02x};"
            " save the file as UTF-8 (in Excel: Save As, CSV UTF-8) and run again"
        ) from None


def _delimiter(header: str) -> str:
    """The header's separator: the one that splits it into the most import column names.

    A semicolon- or tab-separated file (as Excel saves "CSV" in many locales) is read as
    it is; its header says which one it is, so nothing has to be guessed from the data."""

    def known(sep: str) -> int:
        return len({h.strip().lower() for h in header.split(sep)} & set(_ALL_COLUMNS))

    best = max(_DELIMITERS, key=lambda sep: (known(sep), sep == ","))
    return best if known(best) else ","


def _plural(items: list[str], one: str, many: str) -> str:
    return f"{one if len(items) == 1 else many} {', '.join(items)}"


def _records(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a file the csv module cannot read is one clear line, naming
    where it went wrong (the module's own words name no line and no fix)."""
    last = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationError(_csv_problem(path, str(exc), last)) from None
        last = reader.line_num
        yield values


def _csv_problem(path: Path, message: str, last: int) -> str:
    if "field larger than field limit" in message:
        return f"{path}: a value after line {last} is longer than 128 KiB: is this the CSV file you meant?"
    if "unexpected end of data" in message:
        return (
            f"{path}: a double quote opened after line {last} is never closed"
            ' (a quote inside a value is written twice: "")'
        )
    return f"{path}: line {last + 1} is not valid CSV ({message}); a value holding quotes needs them doubled"


def read_import_file(
    path: Path | str, images_dir: Path | str, validate_image: Callable[[Path], object]
) -> ImportFile:
    """Every row of an import file, checked (images too) before anything is sent.

    Comma-, semicolon- and tab-separated files are read alike (the header tells which).

    Raises:
        ValidationError: the file cannot be read, is empty, is not UTF-8, lacks a column or
            has no rows; the images folder does not exist.
        ImportFileError: some rows are bad; ``problems`` names each by line.
    """
    path, images_dir = Path(path), Path(images_dir)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = _decode(path, data)
    if not text.strip():
        raise ValidationError(
            f"{path} is empty: expected a header line {','.join(IMPORT_COLUMNS)}[,published] and a line per car"
        )
    first = text.lstrip("\r\n").splitlines()[0]
    sep = _delimiter(first)
    # The reader counts physical lines itself, so blank lines and quoted line breaks
    # inside a field do not shift the line numbers reported back.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    records = _records(reader, path)
    header: list[str] = []
    for values in records:
        if any(v.strip() for v in values):
            header = [v.strip().lower() for v in values]
            break
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise ValidationError(
            f"{path} lacks column(s) {', '.join(missing)}; its header line must name"
            f" {','.join(IMPORT_COLUMNS)}[,published], separated by commas (or semicolons, or tabs)"
        )
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise ValidationError(f"{path}: {_plural(twice, 'column', 'columns')} named twice in the header line")
    if not images_dir.is_dir():
        what = "is not a folder" if images_dir.exists() else "does not exist"
        raise ValidationError(f"the images folder {images_dir} {what}")
    extra = [h or "(unnamed)" for h in header if h not in _ALL_COLUMNS]
    warnings = (
        (f"{_plural(extra, 'column', 'columns')} ignored: an import reads only {', '.join(_ALL_COLUMNS)}",)
        if extra
        else ()
    )
    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for values in records:
        if not any(v.strip() for v in values):
            continue  # a blank line, or a row of empty cells as spreadsheets leave at the end
        n = _first_line(reader.line_num, values)
        try:
            rows.append(_row(n, header, values, sep, images_dir, validate_image, seen))
        except (ValueError, CarbookError) as exc:
            problems.append(RowProblem(line=n, reason=str(exc)))
    if problems:
        raise ImportFileError(
            f"{len(problems)} bad row(s) in {path}; fix them and run again (nothing was imported)",
            problems=problems,
            warnings=warnings,
        )
    if not rows:
        raise ValidationError(f"{path} has a header line but no rows")
    return ImportFile(rows=tuple(rows), warnings=warnings)


def _row(
    n: int,
    header: list[str],
    values: list[str],
    sep: str,
    images_dir: Path,
    validate_image: Callable[[Path], object],
    seen: dict[str, int],
) -> ImportRow:
    if len(values) > len(header):
        shown = "a tab" if sep == "\t" else repr(sep)
        raise ValueError(
            f"{len(values)} values but the header line names {len(header)} columns"
            f" (a value holding {shown} needs double quotes around it)"
        )
    raw = dict(zip(header, values, strict=False))
    short = [c for c in IMPORT_COLUMNS if c not in raw]
    if short:
        raise ValueError(
            f"missing {_plural(short, 'value for', 'values for')}: the row has {len(values)} of {len(header)} columns"
        )
    empty = [c for c in IMPORT_COLUMNS if not raw[c].strip()]
    if empty:
        raise ValueError(f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty")
    ref = raw["ref"].strip()
    if ref in seen:
        raise ValueError(f"ref {ref!r} already on line {seen[ref]}")
    published = raw.get("published", "").strip().lower()
    if published not in ("", "true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"published must be true or false, not {published!r}")
    year = raw["year"].strip()
    if not (year.isascii() and year.isdigit()):
        raise ValueError(f"year must be a number, not {year!r}")
    car = validated(
        NewCar,
        make=raw["make"],
        model=raw["model"],
        year=int(year),
        price=Money.of(raw["price"].strip(), raw["currency"].strip()),
        is_published=published in ("true", "yes", "1"),
        ref=ref,
    )
    image_name = raw["image"].strip()
    if "/" in image_name or "\\" in image_name or image_name in (".", ".."):
        raise ValueError(f"image must be a file name inside the images folder, not {image_name!r}")
    image = images_dir / image_name
    validate_image(image)
    seen[ref] = n
    return ImportRow(line=n, ref=ref, car=car, image=image, published_given=bool(published))


def differences(car: Car, row: ImportRow) -> dict[str, Any]:
    """What the file says that the car in the database does not, as ``cars.update`` takes it.

    The image is not compared (an imported image is stored under a new name); ``published``
    only when the row gives it."""
    new = row.car
    changes: dict[str, Any] = {}
    for field in ("make", "model", "year"):
        if getattr(car, field) != getattr(new, field):
            changes[field] = getattr(new, field)
    if (car.price_in_paise, car.currency) != (new.price.minor_units, new.price.currency):
        changes["price"] = new.price
    if row.published_given and car.is_published != new.is_published:
        changes["is_published"] = new.is_published
    return changes


def field_names(changes: dict[str, Any]) -> tuple[str, ...]:
    """The fields of ``differences`` as people call them (``published``, not ``is_published``)."""
    return tuple("published" if k == "is_published" else k for k in changes)
