"""`carbook book` and `carbook bookings`: book a car, list your bookings."""

from typing import Annotated

import typer

from .context import client
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
    help="Your bookings.", no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]}
)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def book(
    car_id: Annotated[str, typer.Argument(help="The id of the car to book.")],
    json: Json = False,
) -> None:
    """Book a car. A lost race prints "Already booked. Be fast next time." and exits 7."""
    with client() as cb:
        booking = cb.bookings.book(car_id)
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
            short_id(c.id, full=full),
            escape(f"{c.make} {c.model} ({c.year})"),
            price(c),
            f"{c.booked_at:%Y-%m-%d %H:%M:%S %Z}" if c.booked_at else "",
        )
    console.print(t)
    if not cars:
        console.print("No bookings yet.")
    ids_note(len(cars))
