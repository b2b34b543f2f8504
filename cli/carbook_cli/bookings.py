"""`carbook book` and `carbook bookings`: book a car, list your bookings."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .context import client
from .output import car_json, console, escape, list_json, price, print_json

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
    table = Table(title="My bookings")
    for col in ("car id", "car", "price", "booked at"):
        table.add_column(col)
    for c in cars:
        table.add_row(
            str(c.id),
            escape(f"{c.make} {c.model} ({c.year})"),
            price(c),
            c.booked_at.isoformat() if c.booked_at else "",
        )
    console.print(table)
    if not cars:
        console.print("No bookings yet.")
