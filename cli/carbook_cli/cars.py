"""`carbook cars`: list, show, add, update, publish, import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .context import async_client, client
from .output import (
    EXIT_FAILED,
    car_json,
    car_table,
    console,
    err_console,
    escape,
    ids_note,
    list_json,
    print_car,
    print_json,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from carbook_sdk.importer import ImportReport

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
    """List the cars you may book (published and available, newest first), or with --all
    every car (oldest first, so a car added while you page through comes on a later page)."""
    from carbook_sdk import ValidationError

    if not all_ and (status is not None or published is not None):
        raise ValidationError("--status and --published/--unpublished need --all")
    with client() as cb:
        if all_:
            page = cb.cars.list_all(status=status, published=published, limit=limit, cursor=cursor)
        else:
            page = cb.cars.list_available(limit=limit, cursor=cursor)
    if json:
        print_json(list_json([car_json(c) for c in page.items], page.next_cursor))
        return
    console.print(car_table(page.items, "All cars" if all_ else "Available cars"))
    ids_note(len(page.items))
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

    from carbook_sdk.importer import ImportFileError

    async def run(progress: Progress | None) -> ImportReport:
        task = progress.add_task("Importing", total=None) if progress else None

        def advance(done: int, total: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total)

        async with async_client(signed_in=True) as cb:
            return await cb.cars.import_csv(file, images_dir, concurrency=concurrency, progress=advance)

    try:
        if json:
            report = asyncio.run(run(None))
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=err_console, transient=False) as progress:
                report = asyncio.run(run(progress))
    except ImportFileError as exc:
        if json:
            print_json(
                {"valid": False, "errors": [{"line": p.line, "reason": p.reason} for p in exc.problems]}
            )
        else:
            table = Table(
                title=f"{len(exc.problems)} bad row(s) in {escape(str(file))}: nothing was imported"
            )
            table.add_column("line", justify="right")
            table.add_column("reason")
            for p in exc.problems:
                table.add_row(str(p.line), escape(p.reason))
            err_console.print(table)
        raise
    if json:
        print_json(
            {
                "imported": [{"line": r.line, "ref": r.ref, "id": r.id} for r in report.imported],
                "skipped": [{"line": r.line, "ref": r.ref} for r in report.skipped],
                "failed": [{"line": r.line, "ref": r.ref, "reason": r.reason} for r in report.failed],
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
        for r in report.failed:
            err_console.print(f"line {r.line} ({escape(r.ref)}): {escape(r.reason)}", soft_wrap=True)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
