"""`carbook cars`: list, show, add, update, publish, import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .context import async_client, client
from .output import EXIT_FAILED, car_json, car_table, console, err_console, escape, print_car, print_json

if TYPE_CHECKING:
    from rich.progress import Progress

    from carbook_sdk import NewCar

app = typer.Typer(
    help="Cars: what you may see; admins add, change and import them.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
CarId = Annotated[str, typer.Argument(help="The car's id.")]


def _money(price: str, currency: str) -> Any:
    from carbook_sdk import Money

    return Money.of(price, currency.strip())


@app.command("list")
def list_(
    all_: Annotated[
        bool, typer.Option("--all", help="Every car, booked and unpublished too (admins).")
    ] = False,
    status: Annotated[
        str | None, typer.Option("--status", help="With --all: only 'available' or 'booked' cars.")
    ] = None,
    published: Annotated[
        bool | None,
        typer.Option(
            "--published/--unpublished", help="With --all: only published, or only unpublished, cars."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Cars per page.", min=1, max=1000)] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a previous page (its next cursor).")
    ] = None,
    json: Json = False,
) -> None:
    """List the cars you may book (published and available), or with --all every car."""
    from carbook_sdk import ValidationError

    if not all_ and (status is not None or published is not None):
        raise ValidationError("--status and --published/--unpublished need --all")
    with client() as cb:
        if all_:
            offset = int(cursor) if cursor and cursor.isdigit() else 0
            if cursor and not cursor.isdigit():
                raise ValidationError(f"not a valid page cursor for --all: {cursor!r}")
            page = cb.cars.list_all(status=status, published=published, limit=limit, offset=offset)
        else:
            page = cb.cars.list_available(limit=limit, cursor=cursor)
    if json:
        print_json({"cars": [car_json(c) for c in page.items], "next_cursor": page.next_cursor})
        return
    console.print(car_table(page.items, "All cars" if all_ else "Available cars"))
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}", soft_wrap=True)


@app.command()
def show(car_id: CarId, json: Json = False) -> None:
    """Show one car."""
    with client() as cb:
        car = cb.cars.get(car_id)
    if json:
        print_json(car_json(car))
    else:
        print_car(car, f"{car.make} {car.model}")


@app.command()
def add(
    make: Annotated[str, typer.Option("--make", help="Manufacturer, e.g. Tata.")],
    model: Annotated[str, typer.Option("--model", help="Model, e.g. Nexon EV.")],
    year: Annotated[int, typer.Option("--year", help="Model year (1886-2100).")],
    price: Annotated[str, typer.Option("--price", help="Price in major units, e.g. 1499.00.")],
    image: Annotated[Path, typer.Option("--image", help="JPEG, PNG or WebP file (at most 5 MiB).")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code.")] = "INR",
    publish: Annotated[bool, typer.Option("--publish", help="Publish it at once.")] = False,
    ref: Annotated[str | None, typer.Option("--ref", help="A stable key of your own for this car.")] = None,
    json: Json = False,
) -> None:
    """Add a car (admins): the image is uploaded first, then the row."""
    from carbook_sdk import NewCar
    from carbook_sdk.models import validated

    new = validated(
        NewCar,
        make=make,
        model=model,
        year=year,
        price=_money(price, currency),
        is_published=publish,
        ref=ref,
    )
    with client() as cb:
        car = cb.cars.create(new, image)
    if json:
        print_json(car_json(car))
    else:
        print_car(car, "Added")


@app.command()
def update(
    car_id: CarId,
    make: Annotated[str | None, typer.Option("--make", help="New manufacturer.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="New model.")] = None,
    year: Annotated[int | None, typer.Option("--year", help="New model year.")] = None,
    price: Annotated[str | None, typer.Option("--price", help="New price in major units.")] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="New currency (with --price; default: the car's).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Replace the image (the old one is removed afterwards).")
    ] = None,
    published: Annotated[
        bool | None, typer.Option("--publish/--unpublish", help="Publish or unpublish it.")
    ] = None,
    json: Json = False,
) -> None:
    """Change a car (admins): any field, and --image to replace its image."""
    from carbook_sdk import CarUpdate, ValidationError
    from carbook_sdk.models import parse_car_id, validated

    parse_car_id(car_id)
    if currency is not None and price is None:
        raise ValidationError("--currency needs --price")
    changes: dict[str, Any] = {
        k: v
        for k, v in {"make": make, "model": model, "year": year, "is_published": published}.items()
        if v is not None
    }
    with client() as cb:
        if price is not None:
            changes["price"] = _money(price, currency or _currency_of(cb, car_id))
        if changes:
            validated(CarUpdate, changes)
        if image is not None:
            cb.images.validate(image)
        if not changes and image is None:
            raise ValidationError("nothing to update: give at least one option")
        # One row update either way: the fields and the new image change together or not at all.
        if image is not None:
            car = cb.cars.replace_image(car_id, image, **changes)
        else:
            car = cb.cars.update(car_id, **changes)
    if json:
        print_json(car_json(car))
    else:
        print_car(car, "Updated")


def _currency_of(cb: Any, car_id: str) -> str:
    """The car's currency, for a --price without --currency; a non-admin is told it is
    admins' work rather than that an unpublished car does not exist."""
    from carbook_sdk import AccessDeniedError, CarNotFoundError

    try:
        return str(cb.cars.get(car_id).currency)
    except CarNotFoundError:
        if not cb.auth.is_admin():
            raise AccessDeniedError("changing a car is for admins only", status=403) from None
        raise


@app.command()
def publish(car_id: CarId, json: Json = False) -> None:
    """Publish a car: it shows up in the listing and can be booked (admins)."""
    with client() as cb:
        car = cb.cars.publish(car_id)
    print_json(car_json(car)) if json else console.print(
        f"Published {escape(car.make)} {escape(car.model)} ({car.id})."
    )


@app.command()
def unpublish(car_id: CarId, json: Json = False) -> None:
    """Unpublish a car: hidden from the listing, not bookable (admins)."""
    with client() as cb:
        car = cb.cars.unpublish(car_id)
    print_json(car_json(car)) if json else console.print(
        f"Unpublished {escape(car.make)} {escape(car.model)} ({car.id})."
    )


# Import -----------------------------------------------------------------------------------
IMPORT_COLUMNS = ("ref", "make", "model", "year", "price", "currency", "image")


@dataclass
class Row:
    line: int
    ref: str
    car: NewCar
    image: Path


@dataclass
class ImportReport:
    imported: list[tuple[int, str, str]] = field(default_factory=list)  # line, ref, car id
    skipped: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # line, ref, reason


def _first_line(last_line: int, raw: dict[str | None, Any]) -> int:
    """The line a CSV record starts on, from the line it ends on and its quoted line breaks."""
    values = [v for v in raw.values() if isinstance(v, str)]
    values += [x for v in raw.values() if isinstance(v, list) for x in v if isinstance(x, str)]
    return last_line - sum(v.count("\n") for v in values)


def read_rows(path: Path, images_dir: Path, validate_image: Any) -> tuple[list[Row], list[tuple[int, str]]]:
    """Every row checked before anything is sent: (good rows, [(line, reason)])."""
    from carbook_sdk import CarbookError, NewCar
    from carbook_sdk.models import validated

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        from carbook_sdk import ValidationError

        raise ValidationError(f"cannot read {path}: {exc}") from None
    # The reader counts physical lines itself, so blank lines and quoted line breaks
    # inside a field do not shift the line numbers reported back.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        from carbook_sdk import ValidationError

        raise ValidationError(
            f"{path} lacks column(s) {', '.join(missing)}; expected {', '.join(IMPORT_COLUMNS)} [, published]"
        )
    rows: list[Row] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for raw in reader:
        n = _first_line(reader.line_num, raw)
        try:
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
                price=_money((raw.get("price") or "").strip(), raw.get("currency") or ""),
                is_published=published in ("true", "yes", "1"),
                ref=ref,
            )
            image_name = (raw.get("image") or "").strip()
            if not image_name or "/" in image_name or image_name in (".", ".."):
                raise ValueError(f"image must be a file name inside the images folder, not {image_name!r}")
            image = images_dir / image_name
            validate_image(image)
            seen[ref] = n
            rows.append(Row(line=n, ref=ref, car=car, image=image))
        except (ValueError, CarbookError) as exc:
            errors.append((n, str(exc)))
    return rows, errors


async def _import(rows: list[Row], concurrency: int, progress: Progress | None, report: ImportReport) -> None:
    import asyncio

    from carbook_sdk import CarbookError, ConflictError

    async with async_client(signed_in=True) as cb:
        await cb.auth.access_token()  # refresh once up front, not from many tasks at once
        existing = await cb.cars.by_refs([r.ref for r in rows])
        todo = [r for r in rows if r.ref not in existing]
        report.skipped.extend((r.line, r.ref) for r in rows if r.ref in existing)
        task = progress.add_task("Importing", total=len(todo)) if progress else None
        gate = asyncio.Semaphore(concurrency)

        async def one(row: Row) -> None:
            async with gate:
                try:
                    car = await cb.cars.create(row.car, row.image)
                    report.imported.append((row.line, row.ref, str(car.id)))
                except ConflictError:
                    report.skipped.append((row.line, row.ref))  # imported meanwhile by someone else
                except CarbookError as exc:
                    report.failed.append((row.line, row.ref, str(exc)))
                if progress is not None and task is not None:
                    progress.advance(task)

        await asyncio.gather(*(one(r) for r in todo))


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="CSV with columns ref,make,model,year,price,currency,image[,published].")
    ],
    images_dir: Annotated[
        Path, typer.Option("--images-dir", help="Folder holding the files named in 'image'.")
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Uploads at once.", min=1, max=32)
    ] = 4,
    json: Json = False,
) -> None:
    """Import cars from a CSV (admins). Every row is checked before anything is uploaded;
    rows already imported (same ref) are skipped, so a re-run is safe."""
    import asyncio

    from carbook_sdk import ValidationError

    with client() as cb:
        cb.auth.is_admin()  # fail early on a missing session
        rows, errors = read_rows(file, images_dir, cb.images.validate)
        if not rows and not errors:
            raise ValidationError(f"{file} has no rows")
        if errors:
            if json:
                print_json({"valid": False, "errors": [{"line": n, "reason": r} for n, r in errors]})
            else:
                table = Table(title=f"{len(errors)} bad row(s) in {escape(str(file))}: nothing was imported")
                table.add_column("line", justify="right")
                table.add_column("reason")
                for n, reason in errors:
                    table.add_row(str(n), escape(reason))
                err_console.print(table)
            raise ValidationError(f"{len(errors)} bad row(s); fix them and run again (nothing was imported)")
        if not cb.auth.is_admin():
            from carbook_sdk import AccessDeniedError

            raise AccessDeniedError("importing cars is for admins only")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    report = ImportReport()
    if json:
        asyncio.run(_import(rows, concurrency, None, report))
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=False) as progress:
            asyncio.run(_import(rows, concurrency, progress, report))
    if json:
        print_json(
            {
                "imported": [{"line": n, "ref": ref, "id": cid} for n, ref, cid in sorted(report.imported)],
                "skipped": [{"line": n, "ref": ref} for n, ref in sorted(report.skipped)],
                "failed": [{"line": n, "ref": ref, "reason": why} for n, ref, why in sorted(report.failed)],
            }
        )
    else:
        summary = Table(title=f"Import of {escape(file.name)}")
        summary.add_column("result")
        summary.add_column("rows", justify="right")
        summary.add_row("imported", str(len(report.imported)))
        summary.add_row("skipped (already imported)", str(len(report.skipped)))
        summary.add_row("failed", str(len(report.failed)))
        console.print(summary)
        for n, ref, why in sorted(report.failed):
            err_console.print(f"line {n} ({escape(ref)}): {escape(why)}", soft_wrap=True)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
