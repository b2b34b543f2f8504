"""What `carbook cars watch` shows from the events it hears: a booked car leaves the table
at once, a released or published one comes back once its row is read, a new price shows."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from carbook_cli.watch import LiveListing
from carbook_sdk import AvailabilityEvent
from carbook_sdk.models import Car

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _car(n: int, model: str) -> Car:
    return Car(
        id=uuid.UUID(int=n),
        make="Tata",
        model=model,
        year=2024,
        is_published=True,
        price_in_paise=100_000,
        created_at=T0 + timedelta(minutes=n),
        updated_at=T0,
    )


def _event(kind: str, car: Car, seconds: int, **changes: Any) -> AvailabilityEvent:
    listed = kind in {"listed", "released", "published", "price_changed"}
    return AvailabilityEvent(
        kind=kind,  # type: ignore[arg-type]
        car_id=car.id,
        listed=listed,
        status="booked" if kind == "booked" else "available",
        price_in_paise=changes.get("price_in_paise", car.price_in_paise),
        currency="INR",
        version=T0 + timedelta(seconds=seconds),
        car=car if kind == "listed" else None,
    )


def _text(view: LiveListing) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


def test_the_table_follows_bookings_releases_and_prices() -> None:
    nexon, punch = _car(1, "Nexon"), _car(2, "Punch")
    view = LiveListing()
    for car in (nexon, punch):
        assert view.apply(_event("listed", car, 0)) is False
        view.note(_event("listed", car, 0))
    shown = _text(view)
    assert "Available cars, live (2)" in shown and shown.index("Punch") < shown.index("Nexon")

    booked = _event("booked", nexon, 1)
    assert view.apply(booked) is False
    view.note(booked)
    shown = _text(view)
    assert "live (1)" in shown and "Nexon" not in shown.split("Last changes:")[0]
    assert "booked        00000000…  Tata Nexon" in shown  # named though it left the table

    released = _event("released", nexon, 2)
    assert view.apply(released) is True  # the event carries no row: it must be read
    view.add(nexon)
    view.note(released)
    cheaper = _event("price_changed", punch, 3, price_in_paise=90_000)
    assert view.apply(cheaper) is False
    view.note(cheaper)
    shown = _text(view)
    assert "live (2)" in shown and "₹900.00" in shown and "₹1,000.00" in shown
    lines = shown.split("Last changes:\n")[1].splitlines()
    assert [line.split()[1] for line in lines] == ["price_changed", "released", "booked"]


def test_a_row_read_after_the_car_was_taken_again_is_not_shown() -> None:
    view = LiveListing()
    booked_meanwhile = _car(3, "Tiago").model_copy(update={"booking_status": "booked"})
    view.add(booked_meanwhile)
    assert "live (0)" in _text(view)
