"""Rendering shared by every command: consoles, JSON, errors and their exit codes.

Only the light ``carbook_sdk.errors`` module is imported here, so ``carbook --help``
starts without loading supabase-py, httpx or psycopg; Rich's console, markup and tables
load on first use, so importing the commands (for ``--help``, or shell completion on
every Tab) costs none of them.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, cast

from carbook_sdk.errors import (
    AccessDeniedError,
    AuthError,
    CarAlreadyBookedError,
    CarbookConnectionError,
    CarbookError,
    CarNotPublishedError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    NotAuthenticatedError,
    NotFoundError,
    RollbackRefusedError,
    SessionExpiredError,
    ValidationError,
)

from .context import state

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from carbook_sdk.models import Car


class _LazyConsole:
    """A Rich ``Console`` made on first use, standing in for it until then."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            object.__setattr__(self, "_console", Console(**self._options))
        return cast("Console", self._console)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def _fit(self, width: int) -> None:
        """Use ``width`` columns: the console's, or the one it will be made with (so
        `--help` still loads no Rich console)."""
        if self._console is None:
            self._options["width"] = width
        else:
            self._console.width = width

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real(), name, value)

    # Dunder methods are looked up on the type, never through __getattr__: Rich's Live
    # (progress bars) uses the console as a context manager.
    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._real().__exit__(*exc)


console = cast("Console", _LazyConsole(highlight=False, soft_wrap=False))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False))


def escape(markup: str) -> str:
    """Text made safe to print as Rich markup (``rich.markup.escape``)."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)


def new_table(*headers: str, **options: Any) -> Table:
    """A Rich ``Table``."""
    from rich.table import Table

    return Table(*headers, **options)


#: `book` lost, or `race` had no winner: the car was already booked.
EXIT_ALREADY_BOOKED = 7
#: Exit codes by error family (the table in docs/cli.md). The first match wins.
EXIT_CODES: tuple[tuple[type[CarbookError], int], ...] = (
    (CarAlreadyBookedError, EXIT_ALREADY_BOOKED),
    (CarNotPublishedError, 6),
    (ValidationError, 3),
    (CarbookConnectionError, 4),
    (AccessDeniedError, 5),
    (NotFoundError, 6),
    (ConflictError, 13),
    (AuthError, 12),
    (RollbackRefusedError, 9),
    (DatabaseError, 8),
    (ConfigurationError, 10),
)
#: `db verify` found a failing check; `cars import` had failed rows; the user said no.
EXIT_FAILED = 1
EXIT_CHECKS_FAILED = EXIT_FAILED
#: `stack status`: a part is down.
EXIT_STACK_DOWN = 11
#: What each exit code means, for people: docs/cli.md's table is generated from it (cog).
EXIT_MEANINGS: dict[str, str] = {
    "0": "success",
    "1": "`db verify` found a failing check, `cars import` had failed rows or rows whose `ref` exists "
    "with other data (without `--update`), a race had two winners or errors, you said no, the reader of the output closed it "
    "first (`carbook cars list | head -1`: quietly, as Rich and click do), or anything "
    "else unexpected (a stack that cannot start, a Storage error without a family)",
    "2": "the command line's own shape: an unknown option, a missing argument, two options that exclude "
    "each other",
    "3": "invalid input: any bad value, whichever option it came in (`--year twenty`, `--limit 0`, "
    "`--status bogus`, `--price abc`), a bad file, bad CSV rows",
    "4": "cannot connect (stack or database down, wrong URL), or a request was sent and its answer "
    "never came (its outcome unknown)",
    "5": "permission denied (an admin command without the admin role; cancelling or releasing "
    "someone else's booking without it)",
    "6": "not found (no such car, or it is not published)",
    "7": 'the car is already booked: "Already booked. Be fast next time." (`race`: nobody won, the car '
    "was taken before it began)",
    "8": "the database refused the operation (a failing migration, drift between history and migration "
    "files, a database not migrated, a rolled-back feature with no backup left to put back)",
    "9": "rollback refused: cars are booked (use `--force`)",
    "10": "configuration problem (PostgreSQL or PostgREST not installed, bad settings, an API key the "
    "project does not know)",
    "11": "`stack status`: a part of the local stack is down",
    "12": "not signed in, wrong email or password, the session has ended, or an access token that "
    "does not verify",
    "13": 'already exists (a user with that email; a car with that `ref`: "a car with ref fleet-001 '
    'already exists"), or the car is not in the state the command needs (releasing a car that is '
    "not booked, deleting a booked one)",
    "130, 143": "stopped by Ctrl-C (SIGINT) or SIGTERM: `cars import` prints what was not started and "
    "the command that resumes it; `race` deletes the users it had made first; `cars watch`, which "
    "runs until stopped, closes its connection and leaves the last table (or the JSON lines) as it was",
}


def fit_terminal() -> None:
    """Take $COLUMNS as it is for this run. Rich reads it once, when the consoles are made
    at import; a process that runs the app more than once (tests, an embedding program)
    may run it for terminals of different widths."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        for c in (console, err_console):
            if isinstance(c, _LazyConsole):
                c._fit(int(columns))
            else:
                c.width = int(columns)


def exit_code_for(exc: CarbookError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    import json

    state.json_printed = True
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def error_document(exc: CarbookError) -> dict[str, Any]:
    """What `--json` prints on stdout for an error: the same shape for every command."""
    return {"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}


def print_error(exc: CarbookError) -> None:
    """One line on stderr; with --json, also the error document on stdout."""
    if isinstance(exc, (NotAuthenticatedError, SessionExpiredError)) and exc.hint is None:
        exc.hint = "run `carbook auth login`"  # the SDK does not know its caller is this CLI
    if state.json and not state.json_printed:
        print_json(error_document(exc))
    if isinstance(exc, CarAlreadyBookedError):
        # The seed's promise, word for word.
        err_console.print(exc.message, markup=False, soft_wrap=True)
        return
    # The message may quote user input: never read it as Rich markup.
    err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", soft_wrap=True)


def list_json(items: list[Any], next_cursor: str | None = None) -> dict[str, Any]:
    """Every list in one shape: ``{"items": [...], "next_cursor": ...}`` (null on the last page)."""
    return {"items": items, "next_cursor": next_cursor}


def car_json(car: Car) -> dict[str, Any]:
    """Machine values: minor units and currency, ISO timestamps."""
    return car.model_dump(mode="json")


def price(car: Car) -> str:
    """The price for people; a currency this SDK does not know is shown in minor units."""
    from carbook_sdk.errors import ValidationError as _Invalid

    try:
        return car.price.format()
    except _Invalid:
        return f"{car.price_in_paise} {car.currency} (minor units)"


#: Below this many columns, ids in tables are shortened (``7e2a3044…``); --json has them in full.
FULL_IDS_FROM = 120


def short_id(value: object, *, full: bool = False, among: object = ()) -> str:
    """An id for a table cell: whole on a wide terminal, else the shortest start of it
    (at least 8 characters) that no other id of ``among`` shares, and an ellipsis. That
    start is what a person types back: every id option takes a unique prefix."""
    text = str(value or "")
    if full or len(text) <= 9:
        return text
    others = {str(o) for o in among if o is not None} - {text}  # type: ignore[attr-defined]
    n = 8
    while n < len(text) and any(o.startswith(text[:n]) for o in others):
        n += 1
    return text if n >= len(text) else f"{text[:n]}…"


def full_ids(needed: int = FULL_IDS_FROM) -> bool:
    return console.width >= needed


def table(
    title: str,
    *columns: str,
    whole: tuple[str, ...] = (),
    right: tuple[str, ...] = (),
) -> Table:
    """A table that fits the terminal: ids, amounts and short words (``whole``, ``right``)
    are never cut; every other column wraps, long words folded onto the next line,
    instead of ending in ``…``."""
    t = new_table(title=title)
    for col in columns:
        keep = col in whole or col in right
        t.add_column(
            col,
            no_wrap=keep,
            overflow="fold",
            justify="right" if col in right else "left",
        )
    return t


def car_table(cars: list[Car], title: str, bookers: dict[Any, str | None] | None = None) -> Table:
    """Cars as a table; ``bookers`` (admins): each booked car's booker, shown under its status."""
    full = full_ids()
    t = table(
        title,
        "id",
        "make",
        "model",
        "year",
        "price",
        "status",
        "published",
        whole=("id", "year", "status", "published"),
        right=("price",),
    )
    ids = [c.id for c in cars]
    for c in cars:
        status = "[green]available[/]" if c.booking_status == "available" else "[yellow]booked[/]"
        if c.booking_status == "booked" and bookers and bookers.get(c.id):
            status += f"\n{escape(str(bookers[c.id]))}"  # who (admins): the time is in show, --json
        t.add_row(
            short_id(c.id, full=full, among=ids),
            escape(c.make),
            escape(c.model),
            str(c.year),
            price(c),
            status,
            "yes" if c.is_published else "no",
        )
    return t


def ids_note(shown: int, *, full: bool | None = None) -> None:
    """Say so when ids were shortened, and where to find them whole."""
    if shown and not (full_ids() if full is None else full):
        console.print("Ids are shortened to fit the terminal: --json shows them whole.", soft_wrap=True)


def car_panel_rows(car: Car, booker: str | None = None) -> list[tuple[str, str]]:
    return [
        ("id", str(car.id)),
        ("car", f"{car.make} {car.model} ({car.year})"),
        ("price", price(car)),
        ("published", "yes" if car.is_published else "no"),
        ("status", car.booking_status),
        ("booked by", booker or str(car.booked_by or "")),
        ("booked at", car.booked_at.isoformat() if car.booked_at else ""),
        ("ref", car.ref or ""),
    ]


def print_car(car: Car, heading: str, booker: str | None = None) -> None:
    t = new_table(title=escape(heading), show_header=False)
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for k, v in car_panel_rows(car, booker):
        t.add_row(k, escape(v))
    console.print(t)
    if car.image_url:
        # On a line of its own, never wrapped: a URL to copy whole, at any width.
        console.print("image:", style="bold")
        console.print(car.image_url, markup=False, soft_wrap=True)
