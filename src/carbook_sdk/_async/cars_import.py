"""Cars from a CSV file: looked up by their import key, created or changed row by row."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._base import CAR_COLUMNS, parse_car
from .._concurrency import gather_limited
from ..errors import CarbookError, ConflictError, ValidationError
from ..importer import (
    DifferentRow,
    ImportedCar,
    ImportFailure,
    ImportReport,
    ImportRow,
    ImportStop,
    ProgressCallback,
    SkippedRow,
    differences,
    field_names,
    read_import_file,
)
from ._service import AsyncService

if TYPE_CHECKING:
    from ..models import Car

__all__ = ["AsyncCarImports"]


class AsyncCarImports(AsyncService):
    """The import half of the cars service (``cars.import_csv``, ``cars.by_refs``)."""

    async def by_refs(self, refs: list[str]) -> dict[str, Car]:
        """The cars already carrying these import keys, by key (admins).

        Raises:
            AccessDeniedError: not an admin.
        """
        await self._c._check_admin("looking cars up by import key")
        found: dict[str, Car] = {}
        for start in range(0, len(refs), 200):
            chunk = refs[start : start + 200]
            reply = await self._c._call(
                (await self._c._from("cars")).select(CAR_COLUMNS).in_("ref", chunk).execute
            )
            for row in reply.data:
                car = parse_car(row, self._c._public_url)
                if car.ref is not None:
                    found[car.ref] = car
        return found

    async def import_csv(
        self,
        path: Path | str,
        images_dir: Path | str,
        *,
        concurrency: int = 4,
        update: bool = False,
        progress: ProgressCallback | None = None,
        stop: ImportStop | None = None,
    ) -> ImportReport:
        """Import cars from a CSV file (admins): ``ref,make,model,year,price,currency,image[,published]``.

        Every row, its image included, is checked before anything is sent. A row whose
        ``ref`` exists with the same data is skipped, so a re-run is safe; one whose
        ``ref`` exists with other data is reported in ``different`` (the fields that
        differ), or with ``update`` changed to the file's through `update` (audited as
        any change). Each new car is created image first (as `create`); ``concurrency``
        rows at a time; ``progress(done, total)`` is called after each one.

        ``stop`` (an `ImportStop`) asks it to end early: no row starts after
        ``stop.request()``, rows already started finish, and the report lists the rest in
        ``not_started`` with ``interrupted`` set. Run it again to resume.

        Raises:
            ValidationError: the file cannot be read, is empty or not UTF-8, lacks a column
                or has no rows; no images folder; bad concurrency.
            ImportFileError: bad rows, each named by its line; nothing was imported.
            AccessDeniedError: not an admin.
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 32:
            raise ValidationError(f"concurrency must be a whole number from 1 to 32, not {concurrency!r}")
        await self._c.auth.access_token()  # refresh once up front, not from many calls at once
        file = read_import_file(path, images_dir, self._c.images.validate)
        await self._c._check_admin("importing cars")
        existing = await self.by_refs([r.ref for r in file.rows])
        todo: list[ImportRow] = []
        skipped: list[SkippedRow] = []
        different: list[DifferentRow] = []
        for r in file.rows:
            car = existing.get(r.ref)
            changes = differences(car, r) if car is not None else {}
            if car is None or (changes and update):
                todo.append(r)
            elif changes:
                different.append(
                    DifferentRow(line=r.line, ref=r.ref, id=str(car.id), fields=field_names(changes))
                )
            else:
                skipped.append(SkippedRow(line=r.line, ref=r.ref))
        imported: list[ImportedCar] = []
        updated: list[DifferentRow] = []
        failed: list[ImportFailure] = []
        not_started: list[SkippedRow] = []
        done: list[int] = []

        async def one(row: ImportRow) -> None:
            if stop is not None and stop.requested:
                not_started.append(SkippedRow(line=row.line, ref=row.ref))
                return
            current = existing.get(row.ref)
            try:
                if current is None:
                    car = await self._c.cars.create(row.car, row.image)
                    imported.append(ImportedCar(line=row.line, ref=row.ref, id=str(car.id)))
                else:
                    changes = differences(current, row)
                    await self._c.cars.update(current.id, **changes)
                    updated.append(
                        DifferentRow(
                            line=row.line, ref=row.ref, id=str(current.id), fields=field_names(changes)
                        )
                    )
            except ConflictError:
                skipped.append(SkippedRow(line=row.line, ref=row.ref))  # imported meanwhile elsewhere
            except CarbookError as exc:
                failed.append(ImportFailure(line=row.line, ref=row.ref, reason=str(exc)))
            done.append(row.line)
            if progress is not None:
                progress(len(done), len(todo))

        await gather_limited([functools.partial(one, r) for r in todo], concurrency)

        def in_order(rows: list[Any]) -> tuple[Any, ...]:
            return tuple(sorted(rows, key=lambda r: r.line))

        return ImportReport(
            imported=in_order(imported),
            skipped=in_order(skipped),
            different=in_order(different),
            updated=in_order(updated),
            failed=in_order(failed),
            not_started=in_order(not_started),
            warnings=file.warnings,
            interrupted=bool(not_started),
        )
