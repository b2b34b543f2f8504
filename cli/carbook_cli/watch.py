"""`carbook cars watch`: the listing, live (the SDK's ``cars.watch()``), as a Rich table
for people or one JSON event per line for scripts."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .context import async_client, state
from .output import car_table, console, err_console, escape, short_id

if TYPE_CHECKING:
    import uuid

    from rich.console import RenderableType

    from carbook_sdk import AsyncCarbook, AvailabilityEvent
    from carbook_sdk.models import Car


#: The kinds of events ``cars.watch()`` yields (``carbook_sdk.live.AvailabilityKind``),
#: named here so that `--help` loads no pydantic.
KINDS = ("listed", "booked", "released", "published", "unpublished", "price_changed", "unlisted")


#: How many of the last changes the table shows under it.
RECENT = 8


class LiveListing:
    """What the table shows: the available cars (newest first, as `cars list`) and the
    last changes. Events without the whole row (a car published or released) need it
    fetched: ``needs_row`` says so and ``add`` takes it."""

    def __init__(self) -> None:
        self.cars: dict[uuid.UUID, Car] = {}
        self.recent: deque[str] = deque(maxlen=RECENT)
        #: The names of cars just taken out, for their line in the last changes.
        self._named: dict[uuid.UUID, str] = {}

    def apply(self, event: AvailabilityEvent) -> bool:
        """Take in one event; True when the car's whole row must be fetched to show it."""
        name = self._name(event.car_id)
        if not event.listed:
            self.cars.pop(event.car_id, None)
            self._named[event.car_id] = name
            return False
        if event.car is not None:
            self.cars[event.car_id] = event.car
            return False
        known = self.cars.get(event.car_id)
        if known is None:
            return True
        changes = {"price_in_paise": event.price_in_paise, "currency": event.currency}
        self.cars[event.car_id] = known.model_copy(update=changes)
        return False

    def note(self, event: AvailabilityEvent) -> None:
        """Add a change to the last changes (after ``apply`` and any ``add``)."""
        if event.kind == "listed":
            return
        name = self._named.pop(event.car_id, None) or self._name(event.car_id)
        when = event.version.astimezone()
        self.recent.appendleft(
            f"{when:%H:%M:%S}  {event.kind:<13} {short_id(event.car_id)}"
            + (f"  {escape(name)}" if name else "")
        )

    def add(self, car: Car) -> None:
        if car.is_available:
            self.cars[car.id] = car

    def _name(self, car_id: uuid.UUID) -> str:
        car = self.cars.get(car_id)
        return f"{car.make} {car.model}" if car is not None else ""

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        cars = sorted(self.cars.values(), key=lambda c: (c.created_at, str(c.id)), reverse=True)
        title = f"Available cars, live ({len(cars)}) · Ctrl-C stops"
        parts: list[RenderableType] = [car_table(cars, title)]
        if self.recent:
            parts.append(Text.from_markup("Last changes:\n" + "\n".join(self.recent)))
        return Group(*parts)


def watch(
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            "-k",
            help=f"With --json: print only events of this kind ({', '.join(KINDS)}; repeat it for "
            "several); in the table: only these in the last changes. Default: every kind.",
            metavar="KIND",
            show_default=False,
        ),
    ] = None,
    json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON event per line (JSON Lines), each as it happens."),
    ] = False,
) -> None:
    """Watch the listing live: the cars you may book, then every change as it is committed
    (a car booked leaves the table at once, one published or released joins it). Runs
    until Ctrl-C (exit 130) or SIGTERM (143); a lost connection is joined again and what
    was missed replayed. Signed in, it watches as you; otherwise as any visitor."""
    import asyncio
    import signal
    import threading

    from carbook_sdk import ValidationError

    unknown = [k for k in kind or () if k.strip().lower() not in KINDS]
    if unknown:
        raise ValidationError(
            f"unknown event kind {unknown[0]!r}: choose from {', '.join(KINDS)}"
            " (see `carbook cars watch --help`)"
        )
    wanted = {k.strip().lower() for k in kind} if kind else None
    stopped: list[int] = []
    tasks: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Cancel the watch where it waits: the socket is closed and the client with it,
        # as on any other end, so nothing is left half-done and no traceback is printed.
        stopped.append(signum)
        if tasks:
            loop, task = tasks[0]
            loop.call_soon_threadsafe(task.cancel)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append((asyncio.get_running_loop(), task))
        if stopped:  # a signal came before there was a task to cancel
            return
        async with async_client(signed_in=True) as cb:
            if json:
                await _print_lines(cb, wanted)
            else:
                await _show_table(cb, wanted)

    # Only the main thread may set signal handlers (as `cars import`).
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, on_signal) for s in ((signal.SIGINT, signal.SIGTERM) if main else ())}
    try:
        asyncio.run(run())
    except (asyncio.CancelledError, KeyboardInterrupt):
        stopped.append(signal.SIGINT)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped:
        err_console.print("Stopped watching.")
        raise typer.Exit(128 + stopped[0])


async def _print_lines(cb: AsyncCarbook, wanted: set[str] | None) -> None:
    import sys

    from carbook_sdk import CarbookError

    try:
        async for event in cb.cars.watch():
            if wanted is None or event.kind in wanted:
                sys.stdout.write(event.to_json() + "\n")
                sys.stdout.flush()  # a script reads each event as it happens, not at exit
                state.json_printed = True
    except CarbookError as exc:
        if state.json_printed:
            # The stream is JSON Lines: its error is one more line, not an indented document.
            import json

            from .output import error_document

            sys.stdout.write(json.dumps(error_document(exc)) + "\n")
            sys.stdout.flush()
        raise


async def _show_table(cb: AsyncCarbook, wanted: set[str] | None) -> None:
    import contextlib

    from rich.live import Live

    from carbook_sdk import CarbookError, CarNotFoundError

    view = LiveListing()
    # Rich's Live redraws the table in place on a terminal; elsewhere it prints it once, at the end.
    live = Live(view.render(), console=console, auto_refresh=False, transient=False)
    heard = False
    try:
        with live:
            try:
                async for event in cb.cars.watch():
                    heard = True
                    if view.apply(event):
                        # Gone again before it could be read: its next event says so.
                        with contextlib.suppress(CarNotFoundError):
                            view.add(await cb.cars.get(event.car_id))
                    if wanted is None or event.kind in wanted:
                        view.note(event)
                    live.update(view.render(), refresh=True)
            except CarbookError:
                # Nothing was ever heard (Realtime cannot be reached): the error line alone
                # says so, with no empty table above it (a transient Live leaves nothing).
                live.transient = not heard
                raise
    finally:
        if not console.is_terminal and not live.transient:
            console.line()  # Live ends its last frame with a newline on a terminal only
