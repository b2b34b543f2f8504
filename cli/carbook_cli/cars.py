"""`carbook cars`: list, show, add, update, publish, import (and watch, in watch.py)."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .context import async_client, booker_text, bookers, car_id, client
from .output import (
    EXIT_FAILED,
    car_json,
    car_table,
    console,
    err_console,
    escape,
    full_ids,
    ids_note,
    list_json,
    new_table,
    print_car,
    print_json,
)
from .watch import watch

if TYPE_CHECKING:
    from rich.progress import Progress

    from carbook_sdk.importer import ImportReport

app = typer.Typer(
    help="Cars: what you may see; admins add, change and import them.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
CarId = Annotated[str, typer.Argument(help="The car's id, or a unique start of it (8 characters or more).")]


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
        booked: dict[Any, Any] = {}
        if all_:
            page = cb.cars.list_all(
                status=status,  # type: ignore[arg-type]  # the SDK names an unknown one
                published=published,
                limit=limit,
                cursor=cursor,
            )
            booked = bookers(cb, [c.id for c in page.items if c.booking_status == "booked"])
        else:
            page = cb.cars.list_available(limit=limit, cursor=cursor)
    if json:
        items = [_with_booker(car_json(c), booked.get(c.id)) if all_ else car_json(c) for c in page.items]
        print_json(list_json(items, page.next_cursor))
        return
    # Who booked each car, under its status: on a terminal wide enough for it (narrower
    # ones keep every column readable; `bookings list --all` and `cars show` say it there).
    names: dict[Any, str | None] = (
        {k: v.booker_email or str(v.booked_by or "") for k, v in booked.items()} if full_ids() else {}
    )
    console.print(car_table(page.items, "All cars" if all_ else "Available cars", names))
    ids_note(len(page.items))
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}", soft_wrap=True)


def _with_booker(data: dict[str, Any], booking: Any) -> dict[str, Any]:
    """A car's JSON with its booker's email (admins; null when not booked or unknown)."""
    return {**data, "booked_by_email": booking.booker_email if booking is not None else None}


@app.command()
def show(car: CarId, json: Json = False) -> None:
    """Show one car; admins see who booked it (email) and when."""
    with client() as cb:
        found = cb.cars.get(car_id(cb, car))
        booking = bookers(cb, [found.id] if found.booking_status == "booked" else []).get(found.id)
        admin = cb.auth.is_admin()
    if json:
        print_json(_with_booker(car_json(found), booking) if admin else car_json(found))
    else:
        print_car(found, f"{found.make} {found.model}", booker_text(booking))


@app.command()
def delete(
    car: CarId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: Json = False,
) -> None:
    """Delete a car, then its image (admins; audited). A booked car is refused until its
    booking is released (`carbook bookings release`)."""
    from carbook_sdk import AccessDeniedError, CarIsBookedError

    with client() as cb:
        cid = car_id(cb, car, signed_in=True)
        found = cb.cars.get(cid)
        if not cb.auth.is_admin():
            raise AccessDeniedError("deleting a car is for admins only", status=403)
        if found.booking_status == "booked":
            raise CarIsBookedError(
                f"car {cid} is booked: release it first with `carbook bookings release {cid}`", car_id=cid
            )
        if not yes and not typer.confirm(f"Delete {found.make} {found.model} ({cid}) and its image?"):
            err_console.print("Nothing deleted.")
            raise typer.Exit(EXIT_FAILED)
        gone = cb.cars.delete(cid)
    if json:
        print_json(
            {
                "deleted": car_json(gone.car),
                "image_removed": gone.image_removed,
                "image_kept": gone.image_kept,
            }
        )
        return
    console.print(f"Deleted {escape(gone.car.make)} {escape(gone.car.model)} ({gone.car.id}).")
    if gone.image_kept:
        err_console.print(f"Warning: {escape(gone.image_kept)}", soft_wrap=True)


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
    car: CarId,
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
    from carbook_sdk.models import validated

    if currency is not None and price is None:
        raise ValidationError("--currency needs --price")
    changes: dict[str, Any] = {
        k: v
        for k, v in {"make": make, "model": model, "year": year, "is_published": published}.items()
        if v is not None
    }
    with client() as cb:
        cid = car_id(cb, car, signed_in=True)
        if price is not None:
            changes["price"] = _money(price, currency or _currency_of(cb, cid))
        if changes:
            validated(CarUpdate, changes)
        if image is not None:
            cb.images.validate(image)
        if not changes and image is None:
            raise ValidationError("nothing to update: give at least one option")
        # One row update either way: the fields and the new image change together or not at all.
        if image is not None:
            done = cb.cars.replace_image(cid, image, **changes)
        else:
            done = cb.cars.update(cid, **changes)
    if json:
        print_json(car_json(done))
    else:
        print_car(done, "Updated")


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
def publish(car: CarId, json: Json = False) -> None:
    """Publish a car: it shows up in the listing and can be booked (admins)."""
    with client() as cb:
        done = cb.cars.publish(car_id(cb, car, signed_in=True))
    print_json(car_json(done)) if json else console.print(
        f"Published {escape(done.make)} {escape(done.model)} ({done.id})."
    )


@app.command()
def unpublish(car: CarId, json: Json = False) -> None:
    """Unpublish a car: hidden from the listing, not bookable (admins)."""
    with client() as cb:
        done = cb.cars.unpublish(car_id(cb, car, signed_in=True))
    print_json(car_json(done)) if json else console.print(
        f"Unpublished {escape(done.make)} {escape(done.model)} ({done.id})."
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
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Change cars whose ref exists with other data to the file's (audited)."
        ),
    ] = False,
    json: Json = False,
) -> None:
    """Import cars from a CSV (admins). Every row is checked before anything is uploaded;
    rows already imported (same ref, same data) are skipped, so a re-run is safe and
    resumes an interrupted one. Ctrl-C stops it cleanly: no new row starts, running ones
    finish, and the summary says how to resume."""
    import asyncio
    import signal
    import threading

    from carbook_sdk.importer import ImportFileError, ImportStop

    stop = ImportStop()
    signals: list[int] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def say(message: str) -> None:
        err_console.print(message, soft_wrap=True, markup=False)

    def on_signal(signum: int, _frame: object) -> None:
        # A Python-level handler only records the request: the import checks it before
        # each row, so no upload or insert is ever cut off halfway (an orphaned image).
        signals.append(signum)
        first = stop.request() == 1
        message = (
            "Stopping: no new row starts; the rows already running finish"
            " (their car is created, or their image removed)."
            if first
            else "Still finishing the rows already running; stopping them halfway could leave"
            " an image without a car."
        )
        if loops and loops[0].is_running():
            loops[0].call_soon_threadsafe(say, message)
        else:
            say(message)

    async def run(progress: "Progress | None") -> "ImportReport":
        loops.append(asyncio.get_running_loop())
        tasks: list[Any] = []

        def advance(done: int, total: int) -> None:
            # The bar appears with the first row done: a file refused before any upload
            # is one error line, not an empty bar above it.
            if progress is not None:
                if not tasks:
                    tasks.append(progress.add_task("Importing", total=total))
                progress.update(tasks[0], completed=done, total=total)

        async with async_client(signed_in=True) as cb:
            return await cb.cars.import_csv(
                file, images_dir, concurrency=concurrency, update=update, progress=advance, stop=stop
            )

    # Only the main thread may set signal handlers (an app embedding the CLI in a thread
    # keeps its own; its Ctrl-C then reaches the SDK as it would any call).
    main = threading.current_thread() is threading.main_thread()
    wanted = (signal.SIGINT, signal.SIGTERM) if main else ()
    previous = {sig: signal.signal(sig, on_signal) for sig in wanted}
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
        _render_bad_file(file, exc, json)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    resume = _resume_command(file, images_dir, concurrency, update, json) if report.interrupted else None
    if json:
        _print_report_json(report, resume)
    else:
        _print_report(file, report, resume)
    if report.interrupted:
        # The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
        raise typer.Exit(128 + (signals[0] if signals else signal.SIGINT))
    if report.failed or report.different:
        raise typer.Exit(EXIT_FAILED)


app.command("watch")(watch)


def _render_bad_file(file: Path, exc: Any, json: bool) -> None:
    if json:
        print_json(
            {
                "valid": False,
                "errors": [{"line": p.line, "reason": p.reason} for p in exc.problems],
                "warnings": list(exc.warnings),
            }
        )
        return
    for warning in exc.warnings:
        err_console.print(f"Warning: {escape(warning)}", soft_wrap=True)
    table = new_table(title=f"{len(exc.problems)} bad row(s) in {escape(str(file))}: nothing was imported")
    table.add_column("line", justify="right")
    table.add_column("reason")
    for p in exc.problems:
        table.add_row(str(p.line), escape(p.reason))
    err_console.print(table)


def _resume_command(file: Path, images_dir: Path, concurrency: int, update: bool, json: bool) -> str:
    """The same command again: the rows it imported are skipped, so it resumes."""
    import shlex

    from .context import state

    words = ["carbook", *(["--workdir", str(state.workdir)] if state.workdir else [])]
    words += ["cars", "import", str(file), "--images-dir", str(images_dir), "--concurrency", str(concurrency)]
    words += [*(["--update"] if update else []), *(["--json"] if json else [])]
    return shlex.join(words)


def _print_report_json(report: "ImportReport", resume: str | None) -> None:
    print_json(
        {
            "imported": [{"line": r.line, "ref": r.ref, "id": r.id} for r in report.imported],
            "updated": [r.model_dump() for r in report.updated],
            "skipped": [{"line": r.line, "ref": r.ref} for r in report.skipped],
            "different": [r.model_dump() for r in report.different],
            "failed": [{"line": r.line, "ref": r.ref, "reason": r.reason} for r in report.failed],
            "not_started": [{"line": r.line, "ref": r.ref} for r in report.not_started],
            "warnings": list(report.warnings),
            "interrupted": report.interrupted,
            "resume": resume,
        }
    )


def _print_report(file: Path, report: "ImportReport", resume: str | None) -> None:
    for warning in report.warnings:
        err_console.print(f"Warning: {escape(warning)}", soft_wrap=True)
    summary = new_table(title=f"Import of {escape(file.name)}")
    summary.add_column("result")
    summary.add_column("rows", justify="right")
    summary.add_row("imported", str(len(report.imported)))
    if report.updated:
        summary.add_row("updated (--update)", str(len(report.updated)))
    summary.add_row("skipped (already imported)", str(len(report.skipped)))
    if report.different:
        summary.add_row("different (not changed)", str(len(report.different)))
    summary.add_row("failed", str(len(report.failed)))
    summary.add_row("not started", str(len(report.not_started)))
    console.print(summary)
    for d in report.different:
        err_console.print(
            f"line {d.line} ({escape(d.ref)}): exists with different {'/'.join(d.fields)};"
            " --update changes it to the file's",
            soft_wrap=True,
        )
    for r in report.failed:
        err_console.print(f"line {r.line} ({escape(r.ref)}): {escape(r.reason)}", soft_wrap=True)
    if resume is not None:
        err_console.print(
            f"Interrupted: {len(report.not_started)} row(s) not started. To resume, run the same"
            " command again (what is imported is skipped):",
            soft_wrap=True,
        )
        err_console.print(f"  {escape(resume)}", soft_wrap=True, highlight=False)
