"""`carbook book` and `carbook bookings`: book a car, list, cancel and release bookings."""

from typing import Annotated, Any

import typer

from .context import car_id, client
from .output import (
    car_json,
    console,
    escape,
    full_ids,
    ids_note,
    list_json,
    price,
    print_json,
    short_id,
    table,
)

app = typer.Typer(
    help="Your bookings; admins see and release everyone's.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
CarArg = Annotated[str, typer.Argument(help="The car's id, or a unique start of it (8 characters or more).")]


def book(car: CarArg, json: Json = False) -> None:
    """Book a car. A lost race prints "Already booked. Be fast next time." and exits 7."""
    with client() as cb:
        booking = cb.bookings.book(car_id(cb, car, signed_in=True))
    if json:
        print_json(booking.model_dump(mode="json"))
        return
    if booking.already_yours:
        console.print(
            f"You had already booked car {booking.car_id} (at {booking.booked_at:%Y-%m-%d %H:%M:%S %Z})."
        )
    else:
        console.print(f"[green]Booked[/] car {booking.car_id} at {booking.booked_at:%Y-%m-%d %H:%M:%S %Z}.")


@app.command()
def cancel(car: CarArg, json: Json = False) -> None:
    """Cancel your own booking: the car is bookable again (audited as car.cancelled)."""
    with client() as cb:
        ended = cb.bookings.cancel(car_id(cb, car, signed_in=True))
    _print_ended(ended, json)


@app.command()
def release(
    car: CarArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the audit trail), e.g. 'payment failed'.")
    ] = None,
    json: Json = False,
) -> None:
    """End anyone's booking (admins): the car is bookable again, audited as car.released
    with the reason."""
    with client() as cb:
        ended = cb.bookings.release(car_id(cb, car, signed_in=True), reason=reason)
    _print_ended(ended, json)


def _print_ended(ended: Any, json: bool) -> None:
    if json:
        print_json(ended.model_dump(mode="json"))
    else:
        word = "Released" if ended.code == "released" else "Cancelled"
        console.print(f"{word} the booking of car {ended.car_id}; it can be booked again.")


@app.command("list")
def list_(
    all_: Annotated[
        bool, typer.Option("--all", help="Every booking, with the booker's email (admins).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Bookings per page.", min=1, max=1000)] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a previous page (its next cursor).")
    ] = None,
    json: Json = False,
) -> None:
    """Your bookings, or with --all every booking: car, booker's email, when (admins)."""
    if not all_:
        mine(json)
        return
    with client() as cb:
        page = cb.admin.bookings(limit=limit, cursor=cursor)
    if json:
        print_json(list_json([b.model_dump(mode="json") for b in page.items], page.next_cursor))
        return
    full = full_ids()
    ids = [b.car_id for b in page.items]
    t = table("All bookings", "car id", "car", "booked by", "booked at", whole=("car id",))
    for b in page.items:
        t.add_row(
            short_id(b.car_id, full=full, among=ids),
            escape(f"{b.make} {b.model} ({b.year})"),
            escape(b.booker_email or str(b.booked_by or "a deleted user")),
            f"{b.booked_at:%Y-%m-%d %H:%M:%S %Z}",
        )
    console.print(t)
    if not page.items:
        console.print("No bookings.")
    ids_note(len(page.items))
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}", soft_wrap=True)


@app.command()
def mine(json: Json = False) -> None:
    """List the cars you booked."""
    with client() as cb:
        cars = cb.cars.mine()
    if json:
        print_json(list_json([car_json(c) for c in cars]))
        return
    full = full_ids()
    t = table("My bookings", "car id", "car", "price", "booked at", whole=("car id",), right=("price",))
    for c in cars:
        t.add_row(
            short_id(c.id, full=full, among=[x.id for x in cars]),
            escape(f"{c.make} {c.model} ({c.year})"),
            price(c),
            f"{c.booked_at:%Y-%m-%d %H:%M:%S %Z}" if c.booked_at else "",
        )
    console.print(t)
    if not cars:
        console.print("No bookings yet.")
    ids_note(len(cars))
